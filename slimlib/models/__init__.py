"""The model zoo: remote-sensing foundation models, CV baselines and slimlib's tiny models.

>>> from slimlib import models
>>> models.list_models("rs")[:2]
['ssl4eo-vits16-moco', 'ssl4eo-vits16-dino']
>>> models.spec("dofa-base").embed_dim
768
>>> encoder = models.load("ssl4eo-vits16-moco", pretrained=False)  # (B, 13, H, W) -> (B, 384)

Every loaded model is an :class:`Encoder` with ``.spec`` (a :class:`~slimlib.specs.ModelSpec`)
and ``forward(x (B, C, H, W)) -> (B, spec.embed_dim)``. Its transformer blocks are timm
``Block``s, so :func:`slimlib.slim` applies. See ``docs/models.md`` for the full table.
"""

from slimlib.models.download import Checkpoint, WeightsUnavailableError
from slimlib.models.encoder import Encoder
from slimlib.models.registry import (
    FAMILIES,
    ModelEntry,
    checkpoint_info,
    list_models,
    load,
    register,
    spec,
)

__all__ = [
    "FAMILIES",
    "Checkpoint",
    "Encoder",
    "ModelEntry",
    "WeightsUnavailableError",
    "checkpoint_info",
    "list_models",
    "load",
    "register",
    "spec",
]
