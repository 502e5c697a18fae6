"""Self-supervised pretraining (MoCo v3, MAE), learned slimmable training and the
embedded tiny foundation models.

Quick start::

    from slimlib.train import load_config, pretrain
    cfg = load_config("moco_vitb16_slimmable")            # slimlib/configs/*.yaml
    result = pretrain(cfg, dataset, out_dir="runs/moco")  # resumes from runs/moco/last.pt

    from slimlib.train import width
    with width(result.encoder, 0.25):                     # same weights, 1/4 width
        feats = result.encoder(images)

    from slimlib.train import pretrained_encoder
    enc = pretrained_encoder("rs-moco-tiny")              # cached or trained on demand

Command line: ``python -m slimlib.train --config <yaml> --data <name|folder> --out <dir>``.
"""

from __future__ import annotations

from slimlib.train.augment import Augment
from slimlib.train.configs import (
    AugmentConfig,
    MAEConfig,
    MoCoConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    SlimmableConfig,
    load_config,
)
from slimlib.train.embedded import (
    EMBEDDED_CONFIGS,
    EMBEDDED_SPECS,
    build_encoder,
    checkpoint_path,
    pretrained_encoder,
)
from slimlib.train.encoder import TinyViTEncoder, build_vit
from slimlib.train.loop import PretrainResult, build_method, load_encoder, pretrain
from slimlib.train.mae import MAE
from slimlib.train.moco import MoCoV3
from slimlib.train.slimmable import sandwich_widths, width

__all__ = [
    "Augment", "AugmentConfig", "MAEConfig", "ModelConfig", "MoCoConfig", "OptimConfig",
    "PretrainConfig", "SlimmableConfig", "load_config", "EMBEDDED_CONFIGS", "EMBEDDED_SPECS",
    "build_encoder", "checkpoint_path", "pretrained_encoder", "TinyViTEncoder", "build_vit",
    "PretrainResult", "build_method", "load_encoder", "pretrain", "MAE", "MoCoV3",
    "sandwich_widths", "width",
]
