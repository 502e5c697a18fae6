"""slimlib.models: registry, specs, offline builds, (B, D) features, slimming, weight lookup.

Large models (ViT-L/H) are marked ``slow``; deselect them with ``-m "not slow"``.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from slimlib import models
from slimlib._paths import cache_dir
from slimlib.models import download, embedded, terratorch_models
from slimlib.models.encoder import CopernicusFMEncoder, DOFAEncoder, Encoder
from slimlib.slimming import attention_layout as slimlib_layout
from slimlib.specs import UNITS

RS = [
    "ssl4eo-vits16-moco", "ssl4eo-vits16-dino", "ssl4eo-vits16-mae", "ssl4eo-vits16-fgmae",
    "softcon-vits14", "softcon-vitb14", "dofa-base", "dofa-large", "panopticon-vitb14",
    "copernicusfm-base", "scalemae-large", "terramind-v1-base", "terramind-v1-large",
    "prithvi-eo-2-300m", "prithvi-eo-2-600m", "galileo-nano", "galileo-nano-rgb",
    "galileo-nano-p8", "galileo-nano-rgb-p8",
]
CV = ["mae-vitb16-imagenet", "dinov2-vitb14"]
EMBEDDED = ["rs-moco-tiny", "rs-moco-tiny-slimmable", "rs-mae-tiny", "rs-mae-tiny-slimmable",
            "cv-moco-tiny", "cv-mae-tiny"]
TERRATORCH = ["terramind-v1-base", "terramind-v1-large", "prithvi-eo-2-300m",
              "prithvi-eo-2-600m"]
GALILEO = ["galileo-nano", "galileo-nano-rgb", "galileo-nano-p8", "galileo-nano-rgb-p8"]  # slimlib's own code, not torchgeo
WAVELENGTH_MODELS = ["dofa-base", "dofa-large", "copernicusfm-base", "panopticon-vitb14"]
#: ViT-S models build in a few seconds; ViT-B and larger take >10 s each on a shared CPU and are
#: marked slow (adapter wiring is also covered by tiny models of the same classes below).
FAST = {"ssl4eo-vits16-moco", "ssl4eo-vits16-dino", "ssl4eo-vits16-mae", "ssl4eo-vits16-fgmae",
        "softcon-vits14", "galileo-nano", "galileo-nano-rgb", "galileo-nano-p8",
        "galileo-nano-rgb-p8"}
STATIC = RS + CV
DOWNLOADABLE = [n for n in STATIC if n not in TERRATORCH]  # no optional dependency needed
S2_NAMES = {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
            "B11", "B12"}


@pytest.fixture(autouse=True)
def _hermetic_weight_lookup(monkeypatch, tmp_path_factory):
    """Weights already in the user's torch hub / Hugging Face caches must not leak into tests."""
    import huggingface_hub

    hub = tmp_path_factory.mktemp("torch_hub")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)


def _load_random(name: str, **kw) -> Encoder:
    if name in TERRATORCH:
        kw.setdefault("backend", "timm-standin")
    return models.load(name, pretrained=False, **kw)


def _input(spec, dynamic: bool, batch: int = 1) -> torch.Tensor:
    size = min(spec.input_size, 4 * spec.patch_size) if dynamic else spec.input_size
    return torch.randn(batch, spec.in_chans, size, size)


def _blocks(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules()
            if isinstance(getattr(m, "attn", None), nn.Module)
            and isinstance(getattr(m, "mlp", None), nn.Module)]


def _patch_in_chans(encoder: Encoder) -> int:
    """Channels the backbone's patch embedding consumes (wavelength models: one per id)."""
    for attr in ("wavelengths", "wavelengths_nm"):
        if hasattr(encoder, attr):
            return len(getattr(encoder, attr))
    if hasattr(encoder, "chn_ids"):
        return int(encoder.chn_ids.numel())
    if hasattr(encoder, "groups"):  # Galileo: one patch embedding per channel group
        return sum(len(idx) for idx in encoder.groups.values())
    proj = encoder.backbone.patch_embed.proj
    return int(proj.in_channels)


def _save_state(state: dict, path: Path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


def _slim():
    from slimlib.slimming import slim

    return slim


# ---------------------------------------------------------------------------- registry
def test_list_models_has_every_registered_name():
    names = models.list_models()
    assert set(RS + CV + EMBEDDED) <= set(names)
    assert len(names) == len(set(names))
    assert set(models.list_models("rs")) == set(RS)
    assert set(models.list_models("cv")) == set(CV)
    assert set(models.list_models("embedded")) == set(EMBEDDED)
    with pytest.raises(ValueError, match="family must be one of"):
        models.list_models("sar")


def test_unknown_name_lists_available_names():
    with pytest.raises(ValueError, match="Unknown model 'dofa-bse'") as err:
        models.spec("dofa-bse")
    assert "Did you mean 'dofa-base'" in str(err.value)
    assert "ssl4eo-vits16-moco" in str(err.value) and "cv-mae-tiny" in str(err.value)
    with pytest.raises(ValueError, match="Available models"):
        models.load("no-such-model", pretrained=False)


def test_bad_arguments_are_rejected_before_building():
    with pytest.raises(ValueError, match="unknown option"):
        models.load("ssl4eo-vits16-moco", pretrained=False, bands=("B02",))
    with pytest.raises(ValueError, match="cannot be combined with pretrained=False"):
        models.load("ssl4eo-vits16-moco", pretrained=False, checkpoint="x.pth")
    with pytest.raises(ValueError, match="pretrained must be True or False"):
        models.load("ssl4eo-vits16-moco", pretrained="yes")
    with pytest.raises(ValueError, match="res"):
        models.load("scalemae-large", pretrained=False, res=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        models.load("terramind-v1-base", pretrained=False, backend="onnx")


@pytest.mark.parametrize("name", STATIC)
def test_spec_fields_are_sane(name):
    s = models.spec(name)
    assert s.name == name
    assert s.family in models.FAMILIES and s.units in UNITS and s.feature in ("cls", "mean")
    assert len(s.bands) == len(s.mean) == len(s.std) == s.in_chans > 0
    assert len(set(s.bands)) == len(s.bands)
    assert set(s.bands) <= S2_NAMES or s.bands == ("R", "G", "B")
    assert all(v > 0 for v in s.std)
    if s.units == "reflectance":  # statistics converted from DN (x 10 000) to reflectance
        # Galileo's plain mean is the authors' mean - 2 std, so it may be slightly negative
        assert all(-1.0 < v < 1.0 for v in s.mean) and all(v <= 1.0 for v in s.std)
    assert s.input_size % s.patch_size == 0 and s.embed_dim > 0
    assert s.source and s.licence and s.pretraining and s.architecture
    if name in WAVELENGTH_MODELS:
        assert s.wavelengths_um is not None and len(s.wavelengths_um) == len(s.bands)
        assert all(0.3 < w < 3.0 for w in s.wavelengths_um)  # micrometres, optical
    assert (s.requires == "terratorch") == (name in TERRATORCH)


def test_torchgeo_urls_and_metadata_match_installed_torchgeo():
    import torchgeo.models as tgm

    from slimlib.models.torchgeo_models import TORCHGEO_WEIGHTS

    assert set(TORCHGEO_WEIGHTS) == set(RS) - set(TERRATORCH) - set(GALILEO)
    for name, (enum, member) in TORCHGEO_WEIGHTS.items():
        weights = getattr(tgm, enum)[member]
        s = models.spec(name)
        assert s.source == weights.url == models.checkpoint_info(name).url, name
        assert models.checkpoint_info(name).filename == weights.url.rsplit("/", 1)[1]
        if "in_chans" in weights.meta:
            assert weights.meta["in_chans"] == s.in_chans, name
        if "img_size" in weights.meta:
            assert weights.meta["img_size"] == s.input_size, name


def test_timm_metadata_matches_pretrained_cfg():
    import timm

    for name, tag in [("mae-vitb16-imagenet", "vit_base_patch16_224.mae"),
                      ("dinov2-vitb14", "vit_base_patch14_dinov2.lvd142m")]:
        cfg = timm.models.get_pretrained_cfg(tag)
        s = models.spec(name)
        assert tuple(cfg.mean) == s.mean and tuple(cfg.std) == s.std
        assert cfg.license.lower() in s.licence.lower()
        assert f"timm/{tag}" in s.source and cfg.hf_hub_id == f"timm/{tag}"


def test_docs_table_lists_every_model():
    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    missing = [n for n in models.list_models() if f"`{n}`" not in text]
    assert not missing, f"docs/models.md lacks {missing}"


# ------------------------------------------------------------- builds, features, slimming
def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in STATIC])
def test_builds_offline_gives_features_and_slims(name):
    from timm.layers import Attention, Mlp, SwiGLU

    spec = models.spec(name)
    torch.manual_seed(0)
    enc = _load_random(name)
    assert isinstance(enc, Encoder) and enc.spec == spec and not enc.training
    assert _patch_in_chans(enc) == spec.in_chans
    blocks = _blocks(enc)
    assert blocks, "no transformer blocks found"
    for block in blocks:  # what slimlib.slim expects: timm attention with a fused qkv ...
        assert type(block.mlp) in (Mlp, SwiGLU)
        if name.startswith("galileo"):  # ... or separate q/k/v projections (Galileo)
            assert slimlib_layout(block.attn).kind == "split"
            assert block.attn.q.in_features == spec.embed_dim
            continue
        assert type(block.attn) is Attention
        assert block.attn.qkv.in_features == spec.embed_dim

    x = _input(spec, enc.dynamic_img_size)
    with torch.no_grad():
        y = enc(x)
    assert y.shape == (1, spec.embed_dim) and torch.isfinite(y).all()

    with pytest.raises(ValueError, match="channels"):
        enc(torch.randn(1, spec.in_chans + 1, x.shape[-2], x.shape[-1]))
    if not enc.dynamic_img_size:
        with pytest.raises(ValueError, match="fixed input size"):
            enc(torch.randn(1, spec.in_chans, spec.input_size // 2, spec.input_size // 2))

    slim = _slim()
    small = slim(enc, 0.25)
    with torch.no_grad():
        y_small, y_again = small(x), enc(x)
    assert y_small.shape == (1, spec.embed_dim) and torch.isfinite(y_small).all()
    assert torch.equal(y_again, y), "slim must not modify the original encoder"
    assert _params(small) < _params(enc)
    assert small.spec == spec


def test_random_weights_follow_torch_seed():
    torch.manual_seed(3)
    a = models.load("softcon-vits14", pretrained=False)
    torch.manual_seed(3)
    b = models.load("softcon-vits14", pretrained=False)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
    qkv = a.backbone.blocks[0].attn.qkv.weight
    assert qkv.std() > 0.01  # random, not constant


def test_band_subset_for_wavelength_models():
    enc = models.load("copernicusfm-base", pretrained=False, bands=["B04", "B03", "B02"])
    assert enc.spec.bands == ("B04", "B03", "B02")
    assert enc.spec.wavelengths_um == (0.665, 0.56, 0.49)
    full = models.spec("copernicusfm-base")
    assert enc.spec.mean == tuple(full.mean[full.bands.index(b)] for b in ("B04", "B03", "B02"))
    assert enc.bandwidths_nm == [30.0, 35.0, 65.0]
    with torch.no_grad():
        y = enc(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 768) and torch.isfinite(y).all()
    for bad in (["B04", "B04"], ["R"], [], "B04"):
        with pytest.raises(ValueError, match="bands"):
            models.load("dofa-base", pretrained=False, bands=bad)


def _tiny_spec(name: str):
    return dataclasses.replace(models.spec(name), input_size=32, embed_dim=64)


def test_dofa_adapter_wiring_on_a_tiny_dofa():
    from torchgeo.models.dofa import DOFA

    spec = _tiny_spec("dofa-base")
    torch.manual_seed(0)
    backbone = DOFA(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4,
                    num_classes=0)
    with torch.no_grad():  # torchgeo leaves the fixed position embedding at zero
        backbone.pos_embed.normal_()
    enc = DOFAEncoder(backbone, spec).eval()
    x = torch.randn(2, 13, 32, 32)
    with torch.no_grad():
        y = enc(x)
        own = backbone(x, list(spec.wavelengths_um))
        flipped = DOFAEncoder(backbone, dataclasses.replace(
            spec, wavelengths_um=spec.wavelengths_um[::-1]))(x)
    assert y.shape == (2, 64)
    torch.testing.assert_close(y, own)
    assert not torch.allclose(y, flipped, atol=1e-4), "wavelengths must reach the patch embed"
    slim = _slim()
    if slim is not None:
        with torch.no_grad():
            assert slim(enc, 0.25)(x).shape == (2, 64)


def test_copernicusfm_adapter_wiring_on_a_tiny_model():
    from torchgeo.models.copernicusfm import CopernicusFM

    spec = _tiny_spec("copernicusfm-base")
    torch.manual_seed(0)
    backbone = CopernicusFM(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4)
    widths = tuple(float(w) for w in range(10, 140, 10))
    enc = CopernicusFMEncoder(backbone, spec, widths).eval()
    x = torch.randn(2, 13, 32, 32)
    nan_meta = torch.full((2, 4), float("nan"))
    with torch.no_grad():
        y = enc(x)
        own = backbone(x, nan_meta, wavelengths=[w * 1000 for w in spec.wavelengths_um],
                       bandwidths=list(widths))
        wider = CopernicusFMEncoder(backbone, spec, tuple(2 * w for w in widths))(x)
    assert y.shape == (2, 64)
    torch.testing.assert_close(y, own)
    assert not torch.allclose(y, wider, atol=1e-4), "bandwidths must reach the patch embed"
    with pytest.raises(ValueError, match="square"):
        enc(torch.randn(1, 13, 32, 48))
    slim = _slim()
    if slim is not None:
        with torch.no_grad():
            assert slim(enc, 0.25)(x).shape == (2, 64)


# ----------------------------------------------------------------- pretrained weights
def _offline(monkeypatch):
    monkeypatch.setattr(download, "is_online", lambda url, timeout=3.0: False)


@pytest.mark.parametrize("name", DOWNLOADABLE)
def test_pretrained_offline_fails_fast_with_instructions(name, monkeypatch):
    _offline(monkeypatch)
    ckpt = models.checkpoint_info(name)
    start = time.perf_counter()
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.load(name)
    assert time.perf_counter() - start < 10.0
    msg = str(err.value)
    assert ckpt.url in msg and str(cache_dir("weights") / ckpt.filename) in msg
    assert "checkpoint=" in msg and "pretrained=False" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_real_offline_path_is_fast():
    ckpt = models.checkpoint_info("ssl4eo-vits16-moco")
    if download.is_online(ckpt.url):
        pytest.skip("network reachable: the real offline path cannot be exercised here")
    start = time.perf_counter()
    with pytest.raises(models.WeightsUnavailableError, match="unreachable|offline"):
        models.load("ssl4eo-vits16-moco")
    assert time.perf_counter() - start < 10.0


def test_offline_env_skips_the_network_probe(monkeypatch):
    def no_socket(*args, **kwargs):
        raise AssertionError("the network must not be probed in offline mode")

    monkeypatch.setenv("SLIMLIB_OFFLINE", "1")
    monkeypatch.setattr(download.socket, "create_connection", no_socket)
    with pytest.raises(models.WeightsUnavailableError, match="offline mode"):
        models.load("dinov2-vitb14")


def _saved_random(name: str, path: Path) -> Encoder:
    torch.manual_seed(0)
    enc = models.load(name, pretrained=False)
    backbone = enc.backbone.model if name == "panopticon-vitb14" else enc.backbone
    _save_state(backbone.state_dict(), path)
    return enc


def _same_features(a: Encoder, b: Encoder) -> bool:
    x = _input(a.spec, a.dynamic_img_size, batch=2)
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_local_weights_in_cache_dir_are_used(monkeypatch):
    _offline(monkeypatch)
    name = "ssl4eo-vits16-moco"
    ref = _saved_random(name, cache_dir("weights") / models.checkpoint_info(name).filename)
    torch.manual_seed(123)  # loading must not depend on the RNG
    assert _same_features(ref, models.load(name))


def test_local_weights_in_torch_hub_dir_are_used(monkeypatch, tmp_path):
    _offline(monkeypatch)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    name = "ssl4eo-vits16-dino"
    ref = _saved_random(name, tmp_path / "checkpoints" / models.checkpoint_info(name).filename)
    assert _same_features(ref, models.load(name))


def test_manual_checkpoint_file(monkeypatch, tmp_path):
    _offline(monkeypatch)
    torch.manual_seed(0)
    ref = models.load("ssl4eo-vits16-mae", pretrained=False)
    path = tmp_path / "my_weights.pth"
    torch.save({"model": ref.backbone.state_dict(), "epoch": 3}, path)  # wrapped checkpoint
    assert _same_features(ref, models.load("ssl4eo-vits16-mae", checkpoint=path))
    with pytest.raises(FileNotFoundError, match="not a file"):
        models.load("ssl4eo-vits16-mae", checkpoint=tmp_path / "missing.pth")


def test_manual_checkpoint_for_timm_model(monkeypatch, tmp_path):
    _offline(monkeypatch)
    ref = _saved_random("mae-vitb16-imagenet", tmp_path / "mae.safetensors")
    torch.manual_seed(7)
    assert _same_features(ref, models.load("mae-vitb16-imagenet",
                                           checkpoint=tmp_path / "mae.safetensors"))


def test_checkpoint_with_wrong_keys_is_rejected(monkeypatch, tmp_path):
    _offline(monkeypatch)
    torch.manual_seed(0)
    state = models.load("ssl4eo-vits16-fgmae", pretrained=False).backbone.state_dict()
    del state["blocks.3.mlp.fc1.weight"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing keys \['blocks.3.mlp.fc1.weight'\]"):
        models.load("ssl4eo-vits16-fgmae", checkpoint=path)


@pytest.mark.slow
def test_panopticon_teacher_checkpoint_layout(monkeypatch, tmp_path):
    """The published file holds a 518-px (37x37) position embedding and a mask token."""
    from torchgeo.models import panopticon_vitb14

    _offline(monkeypatch)
    torch.manual_seed(0)
    teacher = panopticon_vitb14(None, img_size=518).model.state_dict()
    teacher["mask_token"] = torch.zeros(1, 768)
    assert teacher["pos_embed"].shape == (1, 1 + 37 * 37, 768)
    path = tmp_path / "panopticon_vitb14_teacher.pth"
    torch.save(teacher, path)
    enc = models.load("panopticon-vitb14", checkpoint=path)
    assert enc.backbone.model.pos_embed.shape == (1, 1 + 16 * 16, 768)
    assert torch.equal(enc.backbone.model.blocks[5].attn.qkv.weight,
                       teacher["blocks.5.attn.qkv.weight"])
    with torch.no_grad():
        assert torch.isfinite(enc(torch.randn(1, 13, 224, 224))).all()


def test_download_when_online(monkeypatch, tmp_path):
    name = "ssl4eo-vits16-moco"
    ckpt = models.checkpoint_info(name)
    source = tmp_path / "remote.pth"
    ref = _saved_random(name, source)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(url)
        Path(dst).write_bytes(source.read_bytes())

    monkeypatch.setattr(download, "is_online", lambda url, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert _same_features(ref, models.load(name))
    assert calls == [ckpt.url]
    assert (cache_dir("weights") / ckpt.filename).is_file()
    models.load(name)  # second time from the cache: no new download
    assert calls == [ckpt.url]


def test_failed_download_is_reported(monkeypatch):
    def broken(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(download, "is_online", lambda url, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", broken)
    with pytest.raises(models.WeightsUnavailableError, match="download failed"):
        models.load("softcon-vits14")


def test_checkpoint_from_url_parses_hugging_face_urls():
    ck = download.Checkpoint.from_url(models.spec("dofa-base").source)
    assert (ck.hf_repo, ck.hf_revision) == ("torchgeo/dofa",
                                             "b8db318b64a90b9e085ec04ba8851233c5893666")
    assert ck.hf_filename == ck.filename == "dofa_base_patch16_224-a0275954.pth"
    plain = download.Checkpoint.from_url("https://example.org/a/b/w.pth")
    assert plain.filename == "w.pth" and plain.hf_repo is None


# ------------------------------------------------------------------------- TerraTorch
@pytest.mark.parametrize("name", TERRATORCH)
def test_terratorch_missing_gives_install_hint(name, monkeypatch):
    monkeypatch.setattr(terratorch_models, "terratorch_available", lambda: False)
    assert models.spec(name).requires == "terratorch"  # spec works without it
    for pretrained in (True, False):
        with pytest.raises(ImportError, match=r"pip install 'slimlib\[terratorch\]'") as err:
            models.load(name, pretrained=pretrained)
        assert "backend='timm-standin'" in str(err.value)
    with pytest.raises(ValueError, match="random weights only"):
        models.load(name, pretrained=True, backend="timm-standin")


def _vit_params(d: int, depth: int, in_chans: int, patch: int, hidden: int) -> int:
    """Parameters of a ViT with biases everywhere, GELU MLP, CLS token and fixed pos-embed."""
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * hidden + hidden) + (hidden * d + d) + 4 * d
    return depth * block + (in_chans * patch * patch * d + d) + d + 2 * d


def _meta_standin(name: str) -> nn.Module:
    """The stand-in built on the meta device: structure and sizes without any compute."""
    with torch.device("meta"):
        return terratorch_models.build_standin(name)


def test_terramind_standin_architecture():
    from timm.layers import SwiGLU

    for name, d, depth, heads in [("terramind-v1-base", 768, 12, 12),
                                  ("terramind-v1-large", 1024, 24, 16)]:
        model = _meta_standin(name)
        h = int(2 * 4 * d / 3)  # TerraTorch GatedMlp: int(2 * hidden / 3) of hidden = 4d
        assert len(model.blocks) == depth and model.num_prefix_tokens == 0
        for block in model.blocks:
            assert isinstance(block.mlp, SwiGLU) and block.mlp.fc1_g.out_features == h
            assert block.attn.qkv.bias is None and block.attn.proj.bias is None
            assert block.mlp.fc1_g.bias is None and block.norm1.bias is None
            assert block.attn.num_heads == heads
        assert model.patch_embed.proj.bias is None
        assert "pos_embed" not in dict(model.named_parameters())
        assert model.pos_embed.shape == (1, 196, d)
        # per block: qkv + proj (4d^2), SwiGLU (3dh), two bias-free norms (2d)
        expected = depth * (4 * d * d + 3 * d * h + 2 * d) + 13 * 16 * 16 * d + d
        assert _params(model) == expected, name


def test_prithvi_standin_architecture():
    for name, d, depth, patch in [("prithvi-eo-2-300m", 1024, 24, 16),
                                  ("prithvi-eo-2-600m", 1280, 32, 14)]:
        model = _meta_standin(name)
        assert len(model.blocks) == depth
        assert model.patch_embed.proj.kernel_size == (patch, patch)
        assert all(b.attn.num_heads == 16 and b.norm1.eps == 1e-5 for b in model.blocks)
        assert _params(model) == _vit_params(d, depth, 6, patch, 4 * d), name
        assert "pos_embed" not in dict(model.named_parameters())
        assert model.pos_embed.shape == (1, 1 + (224 // patch) ** 2, d)
    # 303.9M and 631.2M: the "300M"/"600M" of the names; 631M is also the paper's upper
    # end of "RS FMs from 23M to 631M parameters".
    assert _params(_meta_standin("prithvi-eo-2-600m")) == 631_188_480


def test_prithvi_pos_embed_layout():
    pos = terratorch_models._prithvi_pos_embed(64, 4)  # (1, 1 + 16, 64): width 24|height 24|time 16
    assert pos.shape == (1, 17, 64) and torch.count_nonzero(pos[0, 0]) == 0
    tokens = pos[0, 1:]
    assert torch.equal(tokens[1, 24:48], tokens[0, 24:48])      # same row -> same height part
    assert not torch.equal(tokens[1, :24], tokens[0, :24])      # next column -> new width part
    assert torch.equal(tokens[4, :24], tokens[0, :24])          # next row, same column
    assert torch.allclose(tokens[:, 48:56], torch.zeros(16, 8))  # time 0: sin(0) = 0
    assert torch.allclose(tokens[:, 56:], torch.ones(16, 8))     # cos(0) = 1


class _RefAttention(nn.Module):
    """Plain multi-head self-attention, written out (the TerraMind block's math)."""

    def __init__(self, dim, heads, bias):
        super().__init__()
        self.num_heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class _RefGatedMlp(nn.Module):
    def __init__(self, dim, hidden, bias):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.fc3 = nn.Linear(dim, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, dim, bias=bias)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)) * self.fc3(x))


class _RefMlp(nn.Module):
    def __init__(self, dim, hidden, bias):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden, bias=bias), nn.GELU(), \
            nn.Linear(hidden, dim, bias=bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _RefBlock(nn.Module):
    def __init__(self, dim=48, heads=4, hidden=96, gated=True, bias=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, bias=bias)
        self.attn = _RefAttention(dim, heads, bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, bias=bias)
        self.mlp = (_RefGatedMlp if gated else _RefMlp)(dim, hidden, bias)
        for p in self.parameters():  # non-trivial norms too
            nn.init.normal_(p, std=0.3)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@pytest.mark.parametrize("gated,bias", [(True, False), (False, True)])
def test_to_timm_block_reproduces_the_block(gated, bias):
    from timm.layers import Attention, Mlp, SwiGLU
    from timm.models.vision_transformer import Block

    torch.manual_seed(0)
    ref = _RefBlock(gated=gated, bias=bias).eval()
    new = terratorch_models.to_timm_block(ref).eval()
    assert type(new) is Block and type(new.attn) is Attention
    assert type(new.mlp) is (SwiGLU if gated else Mlp)
    x = torch.randn(3, 10, 48)
    with torch.no_grad():
        torch.testing.assert_close(new(x), ref(x), rtol=1e-5, atol=1e-5)
    slim = _slim()
    if slim is not None:
        holder = nn.Sequential(new)
        with torch.no_grad():
            assert slim(holder, 0.5)(x).shape == x.shape


def test_to_timm_block_refuses_other_blocks():
    ref = _RefBlock()
    ref.attn.q_norm = nn.LayerNorm(12)
    with pytest.raises(TypeError, match="q/k norms"):
        terratorch_models.to_timm_block(ref)
    with pytest.raises(TypeError, match="cannot convert"):
        terratorch_models.to_timm_block(nn.Linear(3, 3))


# ---------------------------------------------------------------------------- embedded
def test_embedded_names_listed_without_importing_training_code():
    assert set(embedded.NAMES) == set(EMBEDDED)
    assert set(models.list_models("embedded")) == set(EMBEDDED)


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_models(name):
    spec = models.spec(name)
    assert spec.family == "embedded" and spec.name == name
    assert len(spec.bands) == len(spec.mean) == len(spec.std)
    torch.manual_seed(0)
    enc = models.load(name, pretrained=False)
    x = torch.randn(2, spec.in_chans, spec.input_size, spec.input_size)
    with torch.no_grad():
        y = enc(x)
    assert y.shape == (2, spec.embed_dim) and torch.isfinite(y).all()
    slim = _slim()
    with torch.no_grad():
        assert slim(enc, 0.25)(x).shape == (2, spec.embed_dim)
