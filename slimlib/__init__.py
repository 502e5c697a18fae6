"""slimlib: post-hoc width slimming of ViT foundation models.

Companion library to *How Much of a Model Do We Need? Redundancy and Slimmability in
Remote Sensing Foundation Models* (Hackel, Burgert, Demir; NeurIPS 2026, arXiv 2601.22841).

Public API (stable names)::

    slimlib.slim(model, width, parts=("attn", "ffn"), order="first", seed=None, scale="slimmed")
    slimlib.describe(model)
    slimlib.flops(model, example_input)
    slimlib.relative_compute(model, widths, example_input)
    slimlib.params(model)
    slimlib.WIDTHS
    slimlib.sweep(...), slimlib.retention(table)
    slimlib.diagnose(model, data, ...)           # slimmability report (docs/deploy.md)
    slimlib.export(model, path, format=...), slimlib.load_slimmed(path)

Sub-packages are imported lazily so ``import slimlib`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "slim": "slimlib.slimming",
    "describe": "slimlib.slimming",
    "SlimAttention": "slimlib.slimming",
    "flops": "slimlib.compute",
    "relative_compute": "slimlib.compute",
    "params": "slimlib.compute",
    "WIDTHS": "slimlib.compute",
    "sweep": "slimlib.sweeping",
    "retention": "slimlib.sweeping",
    "read_table": "slimlib.sweeping",
    "ModelSpec": "slimlib.specs",
    "ImageDataset": "slimlib.specs",
    "diagnose": "slimlib.diagnosis",
    "export": "slimlib.exporting",
    "load_slimmed": "slimlib.exporting",
}
_SUBMODULES = {
    "models", "data", "features", "probes", "metrics", "train", "compute", "slimming", "sweeping",
    "profiles",
    "plotting", "reference", "chapters", "specs", "config", "inputs", "report", "fast", "diagnosis", "exporting",
}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"slimlib.{name}")
    raise AttributeError(f"module 'slimlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
