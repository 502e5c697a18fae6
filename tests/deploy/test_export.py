"""slimlib.export / load_slimmed round trips: safetensors, ONNX Runtime, TorchScript."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import slimlib
from tests.tiny_models import build

X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("width", "order"), [(0.25, "first"), (0.5, "random"), (1.0, "first")])
def test_safetensors_round_trip_function_builder(tmp_path, width, order):
    small = slimlib.slim(build(), width, order=order, seed=1)
    path = slimlib.export(small, tmp_path / "m.safetensors", builder="tests.tiny_models:build")
    config = json.loads((tmp_path / "m.json").read_text())
    assert config["builder"]["name"] == "tests.tiny_models:build"
    loaded = slimlib.load_slimmed(path)
    with torch.no_grad():
        assert torch.equal(loaded(X), small(X))
    assert slimlib.describe(loaded).equals(slimlib.describe(small))


def test_safetensors_round_trip_timm_inferred(tmp_path):
    import timm

    custom = timm.create_model("vit_small_patch16_224", num_classes=0, img_size=32, depth=2)
    with pytest.raises(ValueError, match="pass builder="):
        slimlib.export(slimlib.slim(custom.eval(), 0.5), tmp_path / "c.safetensors")
    model = timm.create_model("vit_small_patch16_224", num_classes=0, img_size=32)
    small = slimlib.slim(model.eval(), 0.1, scale="original")
    loaded = slimlib.load_slimmed(slimlib.export(small, tmp_path / "v.safetensors"))
    with torch.no_grad():
        assert torch.equal(loaded(X), small(X))
    assert loaded.blocks[0].attn.scale == small.blocks[0].attn.scale == 64 ** -0.5


def test_safetensors_round_trip_encoder(tmp_path):
    from slimlib.diagnosis._inputs import resolve_model

    enc = resolve_model("tests.tiny_models:build", bands=("R", "G", "B"), units="rgb01",
                        mean=None, std=None, input_size=None).encoder
    small = slimlib.slim(enc, 0.25)
    loaded = slimlib.load_slimmed(slimlib.export(small, tmp_path / "e.safetensors",
                                                 builder="tests.tiny_models:build"))
    assert loaded.spec == small.spec
    with torch.no_grad():
        assert torch.equal(loaded(X), small(X))


def test_load_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError):
        slimlib.load_slimmed(tmp_path / "nope.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no 'slimlib_config'"):
        slimlib.load_slimmed(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="format must be one of"):
        slimlib.export(build(), tmp_path / "x.bin", format="pickle")
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("width", [0.1, 0.5])
def test_onnx_matches_pytorch(tmp_path, width):
    ort = pytest.importorskip("onnxruntime")
    small = slimlib.slim(build(), width)
    path = slimlib.export(small, tmp_path / "m.onnx", format="onnx", example_input=X[:1])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]  # batch 3: dynamic axis
    with torch.no_grad():
        ref = small(X).numpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_torchscript_round_trip(tmp_path):
    small = slimlib.slim(build(), 0.25)
    path = slimlib.export(small, tmp_path / "m.pt", format="torchscript", example_input=X[:1])
    with pytest.warns(FutureWarning):
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(loaded(X), small(X))


def test_format_follows_the_suffix_and_a_mismatch_is_an_error(tmp_path):
    small = slimlib.slim(build(), 0.5)
    path = slimlib.export(small, tmp_path / "m.safetensors", builder="tests.tiny_models:build")
    assert slimlib.load_slimmed(path) is not None  # format inferred: safetensors
    # a safetensors file named .onnx would only fail later, inside onnxruntime
    with pytest.raises(ValueError, match="looks like onnx"):
        slimlib.export(small, tmp_path / "m.onnx", format="safetensors")
    with pytest.raises(ValueError, match="cannot tell the format"):
        slimlib.export(small, tmp_path / "m.bin")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.bin").exists()


def test_registry_options_survive_the_round_trip(tmp_path):
    """A registry model loaded with an architecture option (Galileo's patch size 8, default 4)
    is rebuilt with the same option: the reloaded model gives the same features."""
    from slimlib import models

    torch.manual_seed(0)
    enc = models.load("galileo-nano-rgb", pretrained=False, patch_size=8)
    small = slimlib.slim(enc, 0.25).eval()
    x = torch.randn(2, 3, enc.spec.input_size, enc.spec.input_size,
                    generator=torch.Generator().manual_seed(1))
    path = slimlib.export(small, tmp_path / "g.safetensors")
    config = json.loads((tmp_path / "g.json").read_text())
    assert config["builder"]["kwargs"] == {"patch_size": 8}
    back = slimlib.load_slimmed(path)
    assert back.patch_size == 8
    with torch.no_grad():
        torch.testing.assert_close(back(x), small(x))
    # a config whose recorded spec no longer matches the rebuilt model is refused
    config["builder"]["spec"]["patch_size"] = 4
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(path)), str(tmp_path / "bad.safetensors"),
              metadata={"slimlib_config": json.dumps(config)})
    with pytest.raises(ValueError, match="differs from the exported one"):
        slimlib.load_slimmed(tmp_path / "bad.safetensors")


def test_time_alternated_rows_and_errors():
    from slimlib.measure._compute import time_alternated

    small = slimlib.slim(build(), 0.25).eval()
    full = build().eval()
    table = time_alternated({"full": full, "small": small}, X, repeats=3)
    assert list(table["runner"]) == ["full", "small"]
    assert (table["min_ms"] <= table["ms"]).all() and (table["ms"] <= table["max_ms"]).all()
    assert table.loc[0, "vs_first"] == 1.0
    np.testing.assert_allclose(table["images_per_s"], len(X) / (table["ms"] / 1e3))
    with pytest.raises(ValueError, match="repeats"):
        time_alternated({"full": full}, X, repeats=0)
    with pytest.raises(ValueError, match="empty"):
        time_alternated({}, X)


# ------------------------------------------------------------- exports that are the model


def relu_vit():
    """A timm ViT with non-default construction arguments (what a timm name cannot record)."""
    import timm

    return timm.create_model("vit_small_patch16_224", num_classes=0, img_size=32,
                             act_layer="relu").eval()


def eps_vit():
    from functools import partial

    import timm

    return timm.create_model("vit_small_patch16_224", num_classes=0, img_size=32,
                             norm_layer=partial(torch.nn.LayerNorm, eps=1e-2)).eval()


@pytest.mark.parametrize(("build_fn", "names"), [(relu_vit, "ReLU.*GELU"),
                                                 (eps_vit, "eps=0.01.*eps=1e-06")])
def test_non_default_timm_arguments_are_refused_unless_a_builder_is_passed(tmp_path, build_fn,
                                                                          names):
    """Before: recorded as the plain timm name; load_slimmed rebuilt GELU / default eps and the
    outputs differed by ~2.45 with no error."""
    small = slimlib.slim(build_fn(), 0.5)
    with pytest.raises(ValueError, match=f"export refused: the model rebuilt.*{names}.*"
                                         "pass builder='module:function'") as err:
        slimlib.export(small, tmp_path / "m.safetensors")
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing written: no weights, no sidecar
    path = slimlib.export(small, tmp_path / "m.safetensors",
                          builder=f"tests.deploy.test_export:{build_fn.__name__}")
    with torch.no_grad():
        assert torch.equal(slimlib.load_slimmed(path)(X), small(X))


def test_a_builder_that_builds_another_model_is_refused(tmp_path):
    small = slimlib.slim(relu_vit(), 0.5)
    with pytest.raises(ValueError, match="export refused"):
        slimlib.export(small, tmp_path / "m.safetensors", builder="tests.deploy.test_export:eps_vit")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_sidecar_that_disagrees_with_the_header_is_an_error(tmp_path):
    """Before: the sidecar was ignored, so an edited or swapped one described another model."""
    a = slimlib.export(slimlib.slim(build(), 0.5), tmp_path / "a.safetensors",
                       builder="tests.tiny_models:build")
    b = slimlib.export(slimlib.slim(build(), 0.25), tmp_path / "b.safetensors",
                       builder="tests.tiny_models:build")
    slimlib.load_slimmed(a)
    sidecar = tmp_path / "a.json"
    good = sidecar.read_text()
    edited = json.loads(good)
    edited["blocks"][0]["scale"] = 1.0
    edited["widths"]["attn"] = 0.75
    sidecar.write_text(json.dumps(edited))
    with pytest.raises(ValueError, match=r"a\.json differs from the config in the header of "
                                         r"a\.safetensors \(in blocks, widths\)"):
        slimlib.load_slimmed(a)
    sidecar.write_text((tmp_path / "b.json").read_text())  # swapped with another export's
    with pytest.raises(ValueError, match="describes another model than the weights"):
        slimlib.load_slimmed(a)
    sidecar.write_text("{not json")
    with pytest.raises(ValueError, match="not readable JSON"):
        slimlib.load_slimmed(a)
    sidecar.unlink()  # no sidecar: the header alone is used
    assert slimlib.describe(slimlib.load_slimmed(a))["attn_width"].tolist() == [0.5] * 2
    assert slimlib.describe(slimlib.load_slimmed(b))["attn_width"].tolist() == [0.25] * 2


@pytest.mark.parametrize("keep", [0, 7, 100, -100])
def test_a_truncated_safetensors_file_is_a_one_line_error_with_advice(tmp_path, keep):
    path = slimlib.export(slimlib.slim(build(), 0.5), tmp_path / "m.safetensors",
                          builder="tests.tiny_models:build")
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(ValueError, match="not a readable safetensors file .*truncated or "
                                         "corrupt: copy it again or export it again") as err:
        slimlib.load_slimmed(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exported_files_follow_the_umask(tmp_path, umask):
    """Before: safetensors files were written 0600 whatever the umask."""
    import os
    import stat

    small = slimlib.slim(build(), 0.5)
    old = os.umask(umask)
    try:
        paths = [slimlib.export(small, tmp_path / "m.safetensors",
                                builder="tests.tiny_models:build"), tmp_path / "m.json",
                 slimlib.export(small, tmp_path / "m.pt")]
    finally:
        os.umask(old)
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p


def test_onnx_files_carry_their_metadata(tmp_path):
    import onnx

    from slimlib.diagnosis._inputs import resolve_model

    enc = resolve_model("tests.tiny_models:build", bands=("R", "G", "B"), units="rgb01",
                        mean=None, std=None, input_size=None).encoder
    path = slimlib.export(slimlib.slim(enc, 0.25), tmp_path / "e.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["model"] == "tests.tiny_models:build" and meta["width"] == "0.25"
    assert json.loads(meta["bands"]) == ["R", "G", "B"] and meta["units"] == "rgb01"
    assert json.loads(meta["mean"]) == pytest.approx(list(enc.spec.mean))
    assert json.loads(meta["std"]) == pytest.approx(list(enc.spec.std))
    assert meta["input_size"] == str(enc.spec.input_size)
    assert meta["slimlib_version"] == slimlib.__version__
    bare = slimlib.export(slimlib.slim(build(), 0.5, parts=("ffn",)), tmp_path / "b.onnx")
    meta = {p.key: p.value for p in onnx.load(str(bare)).metadata_props}
    assert json.loads(meta["width"]) == {"attn": 1.0, "ffn": 0.5}
    assert meta["bands"].startswith("not recorded")


def test_galileo_nano_exports_to_onnx(tmp_path):
    """Before: ``aten.linalg_pinv`` (FlexiPatchEmbed's kernel resampling) failed the export;
    the export now runs the model once first, so the resampling matrix is a constant."""
    import onnxruntime as ort

    from slimlib import models

    torch.manual_seed(0)
    enc = models.load("galileo-nano", pretrained=False)
    small = slimlib.slim(enc, 0.5).eval()
    path = slimlib.export(small, tmp_path / "g.onnx")
    x = torch.randn(3, enc.spec.in_chans, enc.spec.input_size, enc.spec.input_size,
                    generator=torch.Generator().manual_seed(2))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, small(x).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("align", [8, 5])
def test_aligned_widths_round_trip_through_safetensors_and_onnx(tmp_path, align):
    """slim(..., align=) keeps more dims than the floor rule (d_k 1 -> 8 of 16 while d_h
    19 -> 24 of 192 at align 8: the parts end at different ratios); the file rebuilds them and
    records the alignment."""
    import onnx

    small = slimlib.slim(build(), 0.1, align=align)
    path = slimlib.export(small, tmp_path / "a.safetensors", builder="tests.tiny_models:build")
    config = json.loads((tmp_path / "a.json").read_text())
    assert config["align"] == align
    assert {b["head_dim"] for b in config["blocks"]} == {align}
    loaded = slimlib.load_slimmed(path)
    with torch.no_grad():
        assert torch.equal(loaded(X), small(X))
    assert slimlib.describe(loaded).equals(slimlib.describe(small))
    assert slimlib.slimming.slimmed_align(loaded) == align
    assert slimlib.describe(loaded).attrs["align"] == align
    onnx_path = slimlib.export(small, tmp_path / "a.onnx")
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["align"] == str(align) and meta["width"] == "0.1"


def test_unaligned_exports_record_no_alignment(tmp_path):
    small = slimlib.slim(build(), 0.25)
    path = slimlib.export(small, tmp_path / "u.safetensors", builder="tests.tiny_models:build")
    assert json.loads((tmp_path / "u.json").read_text())["align"] is None
    assert slimlib.slimming.slimmed_align(slimlib.load_slimmed(path)) is None
    assert slimlib.deploy.onnx_metadata(small)["align"] == "none"
