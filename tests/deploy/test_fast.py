"""slimlib.deploy._runtimes: compiled and ONNX Runtime runners agree with the eager slimmed model."""

from __future__ import annotations

import pytest
import torch

import slimlib
from slimlib.deploy._runtimes import compile_model, onnx_session
from tests.tiny_models import build

X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_onnx_session_matches_eager():
    pytest.importorskip("onnxruntime")
    small = slimlib.slim(build(), 0.25)
    run = onnx_session(small, example_input=X[:1], threads=1)
    with torch.no_grad():
        torch.testing.assert_close(run(X), small(X), atol=1e-4, rtol=0)
    assert run.path.endswith(".onnx")
    with pytest.raises(FileNotFoundError):
        onnx_session("/nonexistent/model.onnx")


@pytest.mark.slow
def test_compiled_matches_eager():
    small = slimlib.slim(build(), 0.25)
    run = compile_model(small)
    with torch.inference_mode():
        torch.testing.assert_close(run(X), small(X), atol=1e-4, rtol=1e-4)


# --- slimlib.deploy._fastpath.optimize: exact rewrite of the blocks ------------------------------------

def _close(fast, ref, x, atol=1e-5):
    with torch.inference_mode():
        want, got = ref(x), fast(x)
    assert want.abs().max() > 1e-3  # a real signal, not all zeros
    torch.testing.assert_close(got, want, atol=atol, rtol=1e-5)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25, 0.1, 0.01])
def test_optimize_matches_slimmed_vit_small(width):
    import timm

    from slimlib.deploy._fastpath import FastBlock, optimize

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", num_classes=0).eval()
    small = slimlib.slim(model, width)
    fast = optimize(small)
    assert all(isinstance(b, FastBlock) for b in fast.blocks)
    assert not any(isinstance(b, FastBlock) for b in small.blocks)  # input left alone
    head = fast.blocks[0]
    assert head.head_dim == max(1, int(width * 64))
    assert head.qkv_t.shape[1] % 16 == 0 and head.fc1_t.shape[1] % 16 == 0
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    _close(fast, small, x)
    _close(fast, small, x[:1])  # another batch size: scratch buffers are per shape


@pytest.mark.parametrize("width", [1.0, 0.25, 0.1, 0.01])
def test_optimize_matches_slimmed_galileo_nano(width):
    from slimlib import models
    from slimlib.deploy._fastpath import FastBlock, optimize

    torch.manual_seed(0)
    enc = models.load("galileo-nano", pretrained=False)
    with torch.no_grad():  # non-zero biases and norms, so every folded term is exercised
        for name, p in enc.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    small = slimlib.slim(enc, width)
    fast = optimize(small)
    assert sum(isinstance(b, FastBlock) for b in fast.backbone.blocks) == 4
    x = torch.randn(2, 10, 64, 64, generator=torch.Generator().manual_seed(2))
    _close(fast, small, x)


def test_optimize_folds_layerscale_and_random_orders():
    import timm

    from slimlib.deploy._fastpath import optimize

    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=0,
        init_values=0.5).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.ls1.gamma.uniform_(0.2, 2.0)
            block.ls2.gamma.uniform_(0.2, 2.0)
    for width in (1.0, 0.3, 0.05):
        small = slimlib.slim(model, width, order="random", seed=3)
        _close(optimize(small), small, X)
        _close(optimize(small, pad=1, pad_heads_below=0), small, X)  # padding off


def test_optimize_rejects_what_it_cannot_rewrite():
    import timm

    from slimlib.deploy._fastpath import optimize

    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=0,
        qk_norm=True).eval()
    with pytest.raises(TypeError, match="q_norm"):
        optimize(model)
    loose = optimize(model, strict=False)  # left unchanged, still correct
    _close(loose, model, X)
    with pytest.raises(ValueError, match="eval"):
        optimize(build().train())
    with pytest.raises(ValueError, match="pad"):
        optimize(build(), pad=0)
    with pytest.raises(TypeError, match="transformer blocks"):
        optimize(torch.nn.Linear(3, 3).eval())


def test_optimized_model_exports_to_onnx():
    pytest.importorskip("onnxruntime")
    from slimlib.deploy._fastpath import optimize

    small = slimlib.slim(build(), 0.1)
    fast = optimize(small)
    run = onnx_session(fast, example_input=X[:1], threads=1)
    with torch.no_grad():
        torch.testing.assert_close(run(X), small(X), atol=1e-4, rtol=0)


def test_optimized_model_compiles_and_matches():
    """torch.compile traces the fast path's tracing branch (F.pad heads, ones column)."""
    from slimlib.deploy._fastpath import optimize

    small = slimlib.slim(build(), 0.25)  # 4-dim heads: padded to 16 before SDPA
    fast = optimize(small, pad=16, pad_heads_below=12)
    assert fast.blocks[0].head_pad != fast.blocks[0].head_dim  # the padded-head branch runs
    run = compile_model(fast)
    with torch.inference_mode():
        want = small(X)
        assert want.abs().max() > 1e-3
        torch.testing.assert_close(run(X), want, atol=1e-4, rtol=1e-4)
