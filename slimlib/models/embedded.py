"""Bridge to the tiny models slimlib pretrains itself (:mod:`slimlib.train.embedded`).

That module defines ``EMBEDDED_SPECS: dict[str, ModelSpec]``, ``build_encoder(name)``
(random weights, ``(B, C, H, W) -> (B, D)``) and ``pretrained_encoder(name,
train_if_missing=True)`` (cached checkpoint, trained on demand). The names are
:data:`slimlib.constants.EMBEDDED_MODEL_NAMES`, so listing them imports no training code; the
training module is imported (normally, inside the functions that need it) only to build one.
"""

from __future__ import annotations

import os
from typing import Any

from slimlib.constants import EMBEDDED_MODEL_NAMES
from slimlib.models.download import read_state_dict
from slimlib.models.encoder import Encoder, ModuleEncoder
from slimlib.specs import ModelSpec

__all__ = ["NAMES", "names", "spec", "load"]

#: The embedded models the project defines.
NAMES: tuple[str, ...] = EMBEDDED_MODEL_NAMES


def names() -> tuple[str, ...]:
    """The registered embedded names (static, so listing never imports the training code)."""
    return NAMES


def spec(name: str) -> ModelSpec:
    from slimlib.train import embedded as trained

    if name not in trained.EMBEDDED_SPECS:
        raise ValueError(f"slimlib.train.embedded defines no model {name!r}; it has "
                         f"{sorted(trained.EMBEDDED_SPECS)}")
    return trained.EMBEDDED_SPECS[name]


def load(name: str, *, pretrained: bool = True, checkpoint: str | os.PathLike | None = None,
         train_if_missing: bool = True, init_seed: int | None = None,
         data_root: str | os.PathLike | None = None, settings: Any = None) -> Encoder:
    """The embedded encoder ``name`` wrapped as an :class:`Encoder`.

    ``pretrained`` uses slimlib's cached checkpoint (trained first when missing and
    ``train_if_missing``, on ``data_root``, default ``settings.data``); ``checkpoint=`` loads
    a state dict saved from ``build_encoder``. ``settings`` (:class:`slimlib.settings.Settings`)
    also says where the checkpoint cache is.
    """
    from slimlib.train import embedded as trained

    model_spec = spec(name)
    if checkpoint is not None:
        backbone = trained.build_encoder(name)
        backbone.load_state_dict(read_state_dict(checkpoint), strict=True)
    elif pretrained:
        backbone = trained.pretrained_encoder(name, train_if_missing=train_if_missing,
                                              root=data_root, settings=settings)
    else:
        backbone = trained.build_encoder(name, seed=init_seed)
    return ModuleEncoder(backbone, model_spec,
                         dynamic_img_size=bool(getattr(backbone, "dynamic_img_size", False)))
