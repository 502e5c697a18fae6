"""Faster inference of slimmed models: ``torch.compile`` and ONNX Runtime sessions.

Slimming makes every matrix product smaller but leaves the non-slimmable work (patch
embedding, LayerNorms over the full residual width, residual adds, the softmax over N² scores
per head, the bias broadcast of the d-wide outputs) untouched; in eager PyTorch each of these is
a separate memory pass, and at small widths they dominate. Two ways to fuse them:

* :func:`compile_model`: ``torch.compile`` (inductor) with weight freezing, which folds
  constants, pre-packs weights and fuses the element-wise passes (bias + residual + LayerNorm,
  GELU) into fewer kernels.
* :func:`onnx_session`: export (:func:`slimlib.export`) and run in ONNX Runtime with all graph
  optimisations (its fused LayerNorm / GELU / attention kernels).

Both return callables ``(B, C, H, W) -> (B, D)`` with the same output as the eager model to
float tolerance (tests/deploy/test_fast.py). :func:`slimlib.deploy._fastpath.optimize` is the third way: an
exact rewrite of the blocks that stays eager PyTorch (and can be exported or compiled in turn,
e.g. ``onnx_session(optimize(model))``). Measured speed: ``benchmarks/bench_slim.py``,
``docs/deploy.md``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from slimlib._validation import require

__all__ = ["compile_model", "onnx_session"]


def compile_model(model: nn.Module, *, freezing: bool = True, mode: str | None = None
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(model)`` for inference (inductor; weights frozen as constants).

    Args:
        model: an ``nn.Module`` in eval mode (e.g. ``slimlib.slim(...)``'s result).
        freezing: let inductor treat weights as constants (constant folding, weight
            pre-packing). The compiled callable must then only be run under
            ``torch.no_grad()`` / ``torch.inference_mode()``.
        mode: ``torch.compile`` mode (``None``, ``"max-autotune"``, ...).

    Returns:
        The compiled module; the first call per input shape compiles (seconds to minutes).
    """
    import torch._inductor.config as inductor_config

    inductor_config.freezing = bool(freezing)
    return torch.compile(model.eval(), mode=mode, dynamic=False)


def onnx_session(model: nn.Module | str | os.PathLike, *, example_input: torch.Tensor | None = None,
                 threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """An ONNX Runtime session (CPU) over ``model``, wrapped to take and return tensors.

    Args:
        model: an ``nn.Module`` (exported to a temporary ``.onnx`` first) or an ``.onnx`` path.
        example_input: tracing input for the export (see :func:`slimlib.export`).
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).
    """
    ort = require("onnxruntime", "deploy")

    if isinstance(model, nn.Module):
        from slimlib.deploy._export import export

        folder = tempfile.mkdtemp(prefix="slimlib-onnx-")
        path = export(model, Path(folder) / "model.onnx", format="onnx",
                      example_input=example_input)
    else:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(session.run(None, {name: array})[0])

    run.session = session  # type: ignore[attr-defined]
    run.path = str(path)  # type: ignore[attr-defined]
    return run
