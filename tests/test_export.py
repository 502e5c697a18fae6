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
    from slimlib.inputs import resolve_model

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
    from slimlib.compute import time_alternated

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
