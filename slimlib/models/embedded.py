"""Bridge to the tiny models slimlib pretrains itself (:mod:`slimlib.train.embedded`).

Contract of that module: ``EMBEDDED_SPECS: dict[str, ModelSpec]``, ``build_encoder(name)``
(random weights, ``(B, C, H, W) -> (B, D)``) and ``pretrained_encoder(name,
train_if_missing=True)`` (cached checkpoint, trained on demand). It is imported lazily so the
registry works, and lists these names, before it exists.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from slimlib.constants import EMBEDDED_MODEL_NAMES
from slimlib.models.download import read_state_dict
from slimlib.models.encoder import Encoder, ModuleEncoder
from slimlib.specs import ModelSpec

__all__ = ["NAMES", "names", "spec", "load", "available"]

MODULE = "slimlib.train.embedded"

#: The embedded models the project defines (listed even before the module exists).
NAMES: tuple[str, ...] = EMBEDDED_MODEL_NAMES


def _module() -> ModuleType:
    try:
        return importlib.import_module(MODULE)
    except ModuleNotFoundError as err:
        if err.name not in ("slimlib.train", MODULE):
            raise  # a dependency of the module is missing: show the real error
        raise ImportError(f"{MODULE} not available yet: the embedded tiny models are "
                          "defined there") from err


def available() -> bool:
    """Whether :mod:`slimlib.train.embedded` can be imported."""
    try:
        _module()
    except ImportError:
        return False
    return True


def names() -> tuple[str, ...]:
    """The registered embedded names (static, so listing never imports the training code)."""
    return NAMES


def spec(name: str) -> ModelSpec:
    specs = _module().EMBEDDED_SPECS
    if name not in specs:
        raise ValueError(f"{MODULE} defines no model {name!r}; it has {sorted(specs)}")
    return specs[name]


def load(name: str, *, pretrained: bool = True, checkpoint: str | os.PathLike | None = None,
         train_if_missing: bool = True, init_seed: int | None = None) -> Encoder:
    """The embedded encoder ``name`` wrapped as an :class:`Encoder`.

    ``pretrained`` uses slimlib's cached checkpoint (trained first when missing and
    ``train_if_missing``); ``checkpoint=`` loads a state dict saved from ``build_encoder``.
    """
    module = _module()
    model_spec = spec(name)
    if checkpoint is not None:
        backbone = module.build_encoder(name)
        backbone.load_state_dict(read_state_dict(checkpoint), strict=True)
    elif pretrained:
        backbone = module.pretrained_encoder(name, train_if_missing=train_if_missing)
    else:
        backbone = module.build_encoder(name, seed=init_seed)
    return ModuleEncoder(backbone, model_spec,
                         dynamic_img_size=bool(getattr(backbone, "dynamic_img_size", False)))
