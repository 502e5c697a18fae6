"""Galileo-nano: slimlib's implementation against the authors' reference outputs; weights.

The reference tests need the real weights root (``SLIMLIB_WEIGHTS``, CI: ../shared/weights),
read here at import because ``conftest`` unsets it for every other test; the raw-GeoTIFF test
also needs ``SLIMLIB_DATA``. The other tests use random weights and run anywhere.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import slimlib
from slimlib import models
from slimlib.data.bands import EUROSAT_MS_BANDS, RGB_GAIN
from slimlib.measure._compute import flops
from slimlib.models import download
from slimlib.models.galileo import S2_GROUPS, SPACE_TIME_GROUPS, GalileoNano, average_tokens
from slimlib.models.galileo_models import GALILEO_S2_BANDS, SHA256

WEIGHTS = os.environ.get("SLIMLIB_WEIGHTS") or None
TOL = 1e-4
WIDTHS = (1, 0.5, 0.25, 0.1)
#: The model's 13-band order of ``reference_inputs.npz`` (B8A ninth).
ORDER13 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
           "B12")


def _galileo_dir() -> Path:
    if WEIGHTS is None:
        pytest.skip("SLIMLIB_WEIGHTS is not set: the Galileo reference tests need the real "
                    "weights root (CI points it at ../shared/weights)")
    folder = Path(WEIGHTS).resolve() / "galileo-nano"  # absolute: tests link to it
    if not (folder / "encoder.pt").is_file():
        pytest.skip(f"{folder}/encoder.pt not found under SLIMLIB_WEIGHTS={WEIGHTS!r}")
    return folder


@pytest.fixture(scope="module")
def reference():
    folder = _galileo_dir()
    inputs = np.load(folder / "reference_inputs.npz", allow_pickle=False)
    feats = np.load(folder / "reference_features.npz", allow_pickle=False)
    x = torch.from_numpy(inputs["x"]).permute(0, 3, 1, 2)  # (16, 13, 64, 64), normalised
    x = x[:, [ORDER13.index(b) for b in GALILEO_S2_BANDS]].contiguous()
    return x, [str(p) for p in inputs["paths"]], {k: feats[k] for k in feats.files}


def _features(encoder, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return encoder(x).numpy()


@pytest.mark.parametrize("patch", [4, 8])
def test_matches_authors_reference_at_every_width(reference, patch):
    x, _, ref = reference
    enc = models.load("galileo-nano", patch_size=patch, weights=WEIGHTS)
    assert enc.spec.patch_size == patch
    for width in WIDTHS:
        model = enc if width == 1 else slimlib.slim(enc, width)
        got = _features(model, x)
        want = ref[f"features_p{patch}_s{width}"]
        assert got.shape == want.shape == (16, 128)
        err = float(np.abs(got - want).max())
        assert err <= TOL, f"patch {patch}, s={width}: max abs diff {err:.2e}"


def test_preprocessing_from_raw_geotiffs_matches_reference(reference, data_root):
    x_ref, paths, ref = reference
    test = slimlib.data.load("eurosat-ms", split="test", root=data_root)
    where = {p.split("/", 1)[1]: i for i, p in enumerate(test.paths)}
    idx = [where[p] for p in paths]
    subset = slimlib.specs.ImageDataset(
        name=test.name, split=test.split, images=test.images[idx], labels=test.labels[idx],
        classes=test.classes, bands=test.bands, units=test.units)
    assert subset.bands == EUROSAT_MS_BANDS  # B8A last in the files
    enc = models.load("galileo-nano", weights=WEIGHTS)
    x = slimlib.features.prepare_dataset(subset, enc.spec)
    assert float((x - x_ref).abs().max()) < 1e-5
    for patch in (4, 8):
        enc = models.load("galileo-nano", patch_size=patch, weights=WEIGHTS)
        err = float(np.abs(_features(enc, x) - ref[f"features_p{patch}_s1"]).max())
        assert err <= TOL, f"patch {patch}: max abs diff {err:.2e}"


def test_weights_root_and_cache_are_searched_and_verified(tmp_path, monkeypatch):
    folder = _galileo_dir()
    monkeypatch.setenv("SLIMLIB_OFFLINE", "1")
    root = tmp_path / "weights"
    (root / "galileo-nano").mkdir(parents=True)
    (root / "galileo-nano" / "encoder.pt").symlink_to(folder / "encoder.pt")
    assert download.sha256sum(root / "galileo-nano" / "encoder.pt") == SHA256
    models.load("galileo-nano", weights=root)  # found in the weights root, offline
    monkeypatch.setenv("SLIMLIB_WEIGHTS", str(root))
    models.load("galileo-nano-rgb")  # the env var is the default of weights=


# ------------------------------------------------------------------ no real weights needed
def test_wrong_hash_in_weights_root_is_refused(tmp_path):
    torch.manual_seed(0)
    bad = tmp_path / "galileo-nano" / "encoder.pt"
    bad.parent.mkdir()
    torch.save(GalileoNano().state_dict(), bad)
    with pytest.raises(download.ChecksumMismatchError, match="sha256") as err:
        models.load("galileo-nano", weights=tmp_path)
    assert str(bad) in str(err.value) and SHA256 in str(err.value)


def test_offline_and_missing_fails_fast_naming_file_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIMLIB_OFFLINE", "1")
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.load("galileo-nano", weights=empty)
    assert time.perf_counter() - start < 5.0
    msg = str(err.value)
    ckpt = models.checkpoint_info("galileo-nano")
    assert ckpt.url == "https://huggingface.co/nasaharvest/galileo/resolve/main/models/nano/encoder.pt"
    assert ckpt.url in msg and "encoder.pt" in msg and "offline" in msg
    assert str(empty / "galileo-nano" / "encoder.pt") in msg


def test_weights_root_that_is_not_a_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights root"):
        models.load("galileo-nano", weights=tmp_path / "missing")


def test_download_is_verified_and_a_bad_one_removed(tmp_path, monkeypatch):
    def fake_download(url, dst, hash_prefix=None, progress=True):
        Path(dst).write_bytes(b"not the checkpoint")

    monkeypatch.setattr(download, "is_online", lambda url, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(download.ChecksumMismatchError):
        models.load("galileo-nano", weights=None)
    target = slimlib._paths.cache_dir("weights") / "galileo-nano"
    assert not any(target.iterdir()) if target.exists() else True


def test_strict_keys_refuse_a_wrong_state_dict(tmp_path):
    torch.manual_seed(0)
    state = GalileoNano().state_dict()
    state.pop("space_embed.DW.proj.weight")
    path = tmp_path / "w.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="Missing key"):
        models.load("galileo-nano", checkpoint=path)


def test_random_init_is_the_same_architecture_seeded_by_torch():
    torch.manual_seed(1)
    a = models.load("galileo-nano", pretrained=False)
    torch.manual_seed(1)
    b = models.load("galileo-nano", pretrained=False)
    torch.manual_seed(2)
    c = models.load("galileo-nano", pretrained=False)
    ref = GalileoNano().state_dict()
    sa = a.backbone.state_dict()
    assert {k: v.shape for k, v in sa.items()} == {k: v.shape for k, v in ref.items()}
    assert all(torch.equal(sa[k], v) for k, v in b.backbone.state_dict().items())
    assert not torch.equal(sa["blocks.0.attn.q.weight"], c.backbone.state_dict()["blocks.0.attn.q.weight"])
    x = torch.randn(2, 10, 64, 64)
    with torch.no_grad():
        assert a(x).shape == (2, 128)


def test_masked_tokens_are_the_same_as_absent_tokens():
    torch.manual_seed(0)
    model = GalileoNano().eval()
    tokens = torch.randn(2, 12, 128)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, 8:] = True
    with torch.no_grad():
        masked = average_tokens(model.forward_tokens(tokens, mask), mask)
        kept = model.forward_tokens(tokens[:, :8]).mean(dim=1)
        none = model.forward_tokens(tokens, torch.zeros_like(mask))
        plain = model.forward_tokens(tokens)
    torch.testing.assert_close(masked, kept, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(none, plain)


def test_rgb_mode_feeds_only_the_rgb_group_as_reflectance():
    torch.manual_seed(0)
    enc = models.load("galileo-nano-rgb", pretrained=False)
    assert enc.spec.bands == ("R", "G", "B") and enc.spec.units == "rgb01"
    assert list(enc.groups) == ["S2_RGB"]
    ms_spec = models.spec("galileo-nano")
    refl = torch.rand(2, 3, 64, 64) * 0.25  # B04, B03, B02 reflectance
    rgb01 = refl * RGB_GAIN
    x = slimlib.data.prepare(rgb01, enc.spec, bands=("R", "G", "B"), units="rgb01")
    order = [ms_spec.bands.index(b) for b in SPACE_TIME_GROUPS["S2_RGB"]]  # B02, B03, B04
    mean = torch.tensor(ms_spec.mean)[order, None, None]
    std = torch.tensor(ms_spec.std)[order, None, None]
    group = (refl.flip(1) - mean) / std  # R,G,B -> B02,B03,B04
    with torch.no_grad():
        want = enc.backbone({"S2_RGB": group}, patch_size=4, month=6).mean(1)
        torch.testing.assert_close(enc(x), want, atol=1e-5, rtol=1e-5)
    gained = models.load("galileo-nano-rgb", pretrained=False, rgb_gain=1.0)
    assert gained.spec.mean != enc.spec.mean and gained.spec.extras()["rgb_gain"] == 1.0


def test_spec_carries_bands_groups_month_and_provenance():
    spec = models.spec("galileo-nano")
    extra = spec.extras()
    assert spec.bands == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    assert [EUROSAT_MS_BANDS[i] for i in extra["eurosat_ms_index"]] == list(spec.bands)
    assert extra["channel_groups"] == S2_GROUPS and extra["month"] == 6
    assert spec.patch_size == 4 and spec.feature == "mean" and spec.embed_dim == 128
    assert "MIT" in spec.licence and "2502.09356" in spec.citation
    assert "nasaharvest/galileo" in spec.source
    # the authors' (x - (m - 2s)) / (4s) for B02 (OURS stats in DN)
    assert spec.mean[0] == pytest.approx((1395.3408730676722 - 2 * 917.7041440370853) / 1e4)
    assert spec.std[0] == pytest.approx(4 * 917.7041440370853 / 1e4)
    assert "galileo-nano" in models.list_models("rs") and "galileo-nano-rgb" in models.list_models("rs")
    p8 = models.load("galileo-nano-p8", pretrained=False)
    assert p8.patch_size == p8.spec.patch_size == 8 and p8.spec.bands == spec.bands
    assert models.load("galileo-nano-rgb-p8", pretrained=False, patch_size=4).patch_size == 4
    with pytest.raises(ValueError, match="patch_size"):
        models.load("galileo-nano", pretrained=False, patch_size=6)
    with pytest.raises(ValueError, match="rgb_gain"):
        models.load("galileo-nano", pretrained=False, rgb_gain=2.0)


def test_slims_describes_and_counts_flops():
    torch.manual_seed(0)
    enc = models.load("galileo-nano", pretrained=False)
    small = slimlib.slim(enc, 0.25)
    info = slimlib.describe(small)
    assert (info["d_k"] == 4).all() and (info["d_h"] == 128).all() and (info["heads"] == 8).all()
    assert small.backbone.blocks[0].attn.q.weight.shape == (32, 128)
    x = torch.randn(1, 10, 64, 64)
    full, part = flops(enc, x), flops(small, x)
    assert 0.1 < part / full < 0.5
    with torch.no_grad():
        assert small(x).shape == (1, 128)
