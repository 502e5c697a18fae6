"""slimlib.fast: compiled and ONNX Runtime runners agree with the eager slimmed model."""

from __future__ import annotations

import pytest
import torch

import slimlib
from slimlib.fast import compile_model, onnx_session
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
