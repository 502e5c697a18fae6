"""Ship a slimmed model: export (safetensors, ONNX, TorchScript), reload, and run it fast.

``_export`` writes and reloads files (checked by ``_checks`` before a file is moved into
place), ``_fastpath`` is an exact faster eager path (:func:`optimize`), ``_runtimes`` wraps
``torch.compile`` and ONNX Runtime (optional ``[deploy]`` extra). See ``docs/deploy.md``.
"""

from slimlib.deploy._export import (
    FORMATS,
    SUFFIXES,
    export,
    load_slimmed,
    onnx_metadata,
    slimmed_config,
)
from slimlib.deploy._fastpath import FastBlock, optimize
from slimlib.deploy._runtimes import compile_model, onnx_session

__all__ = ["export", "load_slimmed", "FORMATS", "SUFFIXES", "slimmed_config", "onnx_metadata",
           "optimize", "FastBlock", "compile_model", "onnx_session"]
