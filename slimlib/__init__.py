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

Sub-packages are imported lazily so ``import slimlib`` stays cheap. The layout follows the
pipeline: ``slimming`` → ``measure`` → ``features`` → ``probes`` / ``metrics`` → ``sweeping``,
with ``models``, ``data``, ``train``, ``dense``, ``diagnosis``, ``deploy`` and ``scale``
beside them; ``slimlib.book`` (the companion book) uses them and is used by none of them.
See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "slim": "slimlib.slimming",
    "describe": "slimlib.slimming",
    "SlimAttention": "slimlib.slimming",
    "flops": "slimlib.measure",
    "relative_compute": "slimlib.measure",
    "params": "slimlib.measure",
    "WIDTHS": "slimlib.measure",
    "sweep": "slimlib.sweeping",
    "retention": "slimlib.sweeping",
    "read_table": "slimlib.sweeping",
    "ModelSpec": "slimlib.specs",
    "ImageDataset": "slimlib.specs",
    "diagnose": "slimlib.diagnosis",
    "export": "slimlib.deploy",
    "load_slimmed": "slimlib.deploy",
}
#: The pipeline's stages (sub-packages), then the shared modules; ``slimlib.book`` is the
#: companion book's code, a client of the others (it is never imported by them).
_SUBMODULES = {
    "slimming", "measure", "models", "data", "features", "probes", "metrics", "sweeping",
    "dense", "diagnosis", "deploy", "scale", "train", "book", "specs", "settings", "constants",
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
