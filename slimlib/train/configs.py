"""Pretraining configurations: nested dataclasses, YAML loading, validation and hashing.

One :class:`PretrainConfig` drives every run, from the embedded tiny models trained on
this CPU to the ViT-B/16, 100-epoch GPU recipes in ``slimlib/configs/*.yaml``. A YAML
file mirrors the dataclass tree::

    method: moco            # or "mae"
    seed: 0
    model: {img_size: 224, patch_size: 16, embed_dim: 768, depth: 12, num_heads: 12}
    optim: {epochs: 100, batch_size: 1024, base_lr: 1.5e-4, warmup_epochs: 10}
    moco: {dim: 256, mlp_dim: 4096, temperature: 0.2, momentum: 0.99}
    slimmable: {enabled: true, min_width: 0.0625, num_widths: 5}

Unknown keys and out-of-range values raise ``ValueError`` naming what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from slimlib._validation import check_interval

__all__ = [
    "ModelConfig", "AugmentConfig", "OptimConfig", "MoCoConfig", "MAEConfig",
    "SlimmableConfig", "PretrainConfig", "load_config", "METHODS", "DISTILL",
]

METHODS = ("moco", "mae")
#: In-place distillation targets of the sub-widths (see :mod:`slimlib.train.slimmable`).
DISTILL = ("inplace", "none")
FEATURES = ("cls", "mean")


def _fail(name: str, allowed: str, value: object) -> None:
    raise ValueError(f"{name} must be {allowed}; got {value!r}")


def _check_range(name: str, value: object, lo: float, hi: float, *, lo_open: bool = False,
                 hi_open: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = not math.isnan(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        _fail(name, f"a number in {left}{lo}, {hi}{right}", value)


def _check_pos_int(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(name, "a positive integer" + (" or null" if allow_none else ""), value)


@dataclass
class ModelConfig:
    """Encoder architecture: a timm ``VisionTransformer`` (no classifier head).

    ``in_chans=None`` takes the channel count from the data. ``feature=None`` takes the
    method's default pooled feature (MoCo: ``"cls"``, MAE: ``"mean"`` of patch tokens).
    """

    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    in_chans: int | None = None
    feature: str | None = None

    def validate(self) -> None:
        for name in ("img_size", "patch_size", "embed_dim", "depth", "num_heads"):
            _check_pos_int(f"model.{name}", getattr(self, name))
        _check_pos_int("model.in_chans", self.in_chans, allow_none=True)
        if self.img_size % self.patch_size:
            raise ValueError(f"model.img_size ({self.img_size}) must be a multiple of "
                             f"model.patch_size ({self.patch_size})")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"model.embed_dim ({self.embed_dim}) must be divisible by "
                             f"model.num_heads ({self.num_heads})")
        _check_range("model.mlp_ratio", self.mlp_ratio, 0.0, 64.0, lo_open=True)
        if self.feature is not None and self.feature not in FEATURES:
            _fail("model.feature", f"one of {FEATURES} or null", self.feature)


@dataclass
class AugmentConfig:
    """Channel-agnostic batch augmentations (see :mod:`slimlib.train.augment`).

    Crops, flips and the brightness/contrast jitter act on the raw units; gaussian noise
    (``noise_std``, in standardised units) and blur act after normalisation. No op assumes
    RGB, so the same recipe works for 3 or 13 bands.
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    per_channel: bool = True
    noise_p: float = 0.0
    noise_std: float = 0.1
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def validate(self) -> None:
        check_interval("augment.crop_scale", self.crop_scale, 1e-3, 1.0)
        check_interval("augment.crop_ratio", self.crop_ratio, 1e-2, 100.0)
        for name in ("hflip", "vflip", "jitter_p", "noise_p", "blur_p"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        for name in ("brightness", "contrast"):
            _check_range(f"augment.{name}", getattr(self, name), 0.0, 1.0)
        _check_range("augment.noise_std", self.noise_std, 0.0, 10.0)
        check_interval("augment.blur_sigma", self.blur_sigma, 1e-3, 20.0)


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay.

    The learning rate is ``base_lr * batch_size / 256`` (the MoCo v3 / MAE scaling rule).
    Give either ``steps`` or ``epochs`` (``steps`` wins); ``warmup_frac`` is the warm-up
    share of all steps unless ``warmup_epochs`` is set.
    """

    batch_size: int = 256
    epochs: float | None = 100.0
    steps: int | None = None
    base_lr: float = 1.5e-4
    min_lr: float = 0.0
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_frac: float = 0.1
    warmup_epochs: float | None = None
    clip_grad: float | None = None

    def validate(self) -> None:
        _check_pos_int("optim.batch_size", self.batch_size)
        _check_pos_int("optim.steps", self.steps, allow_none=True)
        if self.steps is None and self.epochs is None:
            raise ValueError("optim: give either steps or epochs (both are null)")
        if self.epochs is not None:
            _check_range("optim.epochs", self.epochs, 0.0, 1e6, lo_open=True)
        _check_range("optim.base_lr", self.base_lr, 0.0, 10.0, lo_open=True)
        _check_range("optim.min_lr", self.min_lr, 0.0, 10.0)
        _check_range("optim.weight_decay", self.weight_decay, 0.0, 10.0)
        check_interval("optim.betas", self.betas, 0.0, 0.999999)
        _check_range("optim.warmup_frac", self.warmup_frac, 0.0, 1.0, hi_open=True)
        if self.warmup_epochs is not None:
            _check_range("optim.warmup_epochs", self.warmup_epochs, 0.0, 1e6)
        if self.clip_grad is not None:
            _check_range("optim.clip_grad", self.clip_grad, 0.0, 1e6, lo_open=True)


@dataclass
class MoCoConfig:
    """MoCo v3 heads and loss (Chen, Xie, He 2021).

    ``momentum`` is the starting EMA coefficient of the momentum encoder; it rises to 1
    on a half-cosine over training. ``freeze_patch_embed`` keeps the random patch
    projection fixed, the MoCo v3 stability trick for ViTs.
    """

    dim: int = 256
    mlp_dim: int = 4096
    temperature: float = 0.2
    momentum: float = 0.99
    freeze_patch_embed: bool = True

    def validate(self) -> None:
        _check_pos_int("moco.dim", self.dim)
        _check_pos_int("moco.mlp_dim", self.mlp_dim)
        _check_range("moco.temperature", self.temperature, 0.0, 10.0, lo_open=True)
        _check_range("moco.momentum", self.momentum, 0.0, 1.0)


@dataclass
class MAEConfig:
    """Masked autoencoder (He et al. 2022): mask ratio, light decoder, pixel loss."""

    mask_ratio: float = 0.75
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    norm_pix_loss: bool = True

    def validate(self) -> None:
        _check_range("mae.mask_ratio", self.mask_ratio, 0.0, 1.0, lo_open=True, hi_open=True)
        for name in ("decoder_dim", "decoder_depth", "decoder_heads"):
            _check_pos_int(f"mae.{name}", getattr(self, name))
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"mae.decoder_dim ({self.decoder_dim}) must be divisible by "
                             f"mae.decoder_heads ({self.decoder_heads})")


@dataclass
class SlimmableConfig:
    """Learned slimmable training: sandwich rule + in-place distillation.

    Each step trains ``num_widths`` widths of the *same* weights: ``max_width``,
    ``min_width`` and ``num_widths - 2`` widths drawn uniformly from
    ``[min_width, max_width]`` (the paper uses 5). ``distill="inplace"`` trains the
    sub-widths on the full width's detached outputs; ``"none"`` gives every width the
    plain pretraining loss. ``train_heads=False`` lets the sub-width losses update only the
    encoder: the pretraining heads (MoCo projector/predictor, MAE decoder) learn from the
    full width alone.
    """

    enabled: bool = False
    min_width: float = 0.0625
    max_width: float = 1.0
    num_widths: int = 5
    distill: str = "inplace"
    train_heads: bool = False

    def validate(self) -> None:
        for name in ("min_width", "max_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0.0 < float(value) <= 1.0
            ):
                _fail(f"slimmable.{name}", "a width in (0, 1]", value)
        if self.min_width > self.max_width:
            raise ValueError(f"slimmable.min_width ({self.min_width}) must not exceed "
                             f"slimmable.max_width ({self.max_width})")
        if isinstance(self.num_widths, bool) or not isinstance(self.num_widths, int) or \
                self.num_widths < 2:
            _fail("slimmable.num_widths", "an integer >= 2 (full and minimum width at least)",
                  self.num_widths)
        if self.distill not in DISTILL:
            _fail("slimmable.distill", f"one of {DISTILL}", self.distill)
        if not isinstance(self.train_heads, bool):
            _fail("slimmable.train_heads", "true or false", self.train_heads)


_SECTIONS: dict[str, type] = {
    "model": ModelConfig, "augment": AugmentConfig, "optim": OptimConfig,
    "moco": MoCoConfig, "mae": MAEConfig, "slimmable": SlimmableConfig,
}


@dataclass
class PretrainConfig:
    """Everything one pretraining run needs; ``hash()`` keys checkpoints by it.

    Attributes:
        method: ``"moco"`` (MoCo v3) or ``"mae"``.
        mean, std: per-channel normalisation in the data's units; ``None`` estimates
            them from the training images (recorded in the checkpoint).
        device: ``"auto"`` (CUDA when available, else CPU; the packaged ViT-B configs),
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        amp: ``None`` (fp32) or ``"bf16"`` autocast.
        num_threads: CPU threads during training (``None`` leaves torch's setting).
        deterministic: ``torch.use_deterministic_algorithms(True)`` while training.
        checkpoint_every: steps between checkpoints (``0``: only at the end).
        num_workers: DataLoader workers for folder datasets (in-memory data ignores it).
    """

    method: str = "moco"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    moco: MoCoConfig = field(default_factory=MoCoConfig)
    mae: MAEConfig = field(default_factory=MAEConfig)
    slimmable: SlimmableConfig = field(default_factory=SlimmableConfig)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    device: str = "cpu"
    amp: str | None = None
    num_threads: int | None = None
    deterministic: bool = True
    checkpoint_every: int = 0
    log_every: int = 1
    num_workers: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for any value outside its allowed range."""
        if self.method not in METHODS:
            _fail("method", f"one of {METHODS}", self.method)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            _fail("seed", "a non-negative integer", self.seed)
        for name in _SECTIONS:
            getattr(self, name).validate()
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, tuple | list) or not value):
                _fail(name, "null or a non-empty list of per-channel numbers", value)
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given or both be null")
        if self.std is not None and any(float(s) <= 0 for s in self.std):
            _fail("std", "strictly positive per-channel values", self.std)
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError(f"mean ({len(self.mean)}) and std ({len(self.std)}) lengths differ")
        if not isinstance(self.device, str) or not self.device:
            _fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                _fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        if self.amp not in (None, "bf16"):
            _fail("amp", "null or 'bf16'", self.amp)
        _check_pos_int("num_threads", self.num_threads, allow_none=True)
        for name in ("checkpoint_every", "num_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                _fail(name, "a non-negative integer", value)
        _check_pos_int("log_every", self.log_every)

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        """Build from a (YAML-shaped) nested dict; unknown keys raise ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError(f"a pretraining config must be a mapping; got {type(data).__name__}")
        top = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - top)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(top)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS:
                kwargs[key] = _section(key, value)
            elif key in ("mean", "std") and value is not None:
                kwargs[key] = tuple(float(v) for v in value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (tuples as lists) that round-trips through YAML/JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes: Any) -> PretrainConfig:
        """A validated copy with top-level or dotted (``"optim.steps"``) fields changed."""
        data = self.to_dict()
        for key, value in changes.items():
            _set_dotted(data, key, value)
        return PretrainConfig.from_dict(data)

    def hash(self, *extra: str) -> str:
        """12-hex-digit SHA-256 of the canonical config (plus ``extra`` strings)."""
        payload = json.dumps(self.to_dict(), sort_keys=True) + "".join(f"|{e}" for e in extra)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def feature(self) -> str:
        """Pooled feature of the encoder (explicit, else the method's default)."""
        return self.model.feature or ("cls" if self.method == "moco" else "mean")


def _section(name: str, value: Any) -> Any:
    cls = _SECTIONS[name]
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise ValueError(f"config section {name!r} must be a mapping; got {value!r}")
    allowed = {f.name: f for f in fields(cls)}
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keys {unknown} in section {name!r}; allowed: {sorted(allowed)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.replace("__", ".").split(".")
    node = data
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            raise ValueError(f"unknown config section {part!r} in {key!r}")
        node = node[part]
    if parts[-1] not in node:
        raise ValueError(f"unknown config key {key!r}")
    node[parts[-1]] = list(value) if isinstance(value, tuple) else value


def load_config(source: str | os.PathLike | dict[str, Any] | PretrainConfig,
                **overrides: Any) -> PretrainConfig:
    """Load a :class:`PretrainConfig` from a YAML file, a dict or a config.

    ``overrides`` use dotted names, e.g. ``load_config(path, **{"optim.steps": 10})``.
    A bare name like ``"moco_vitb16_slimmable"`` resolves to ``slimlib/configs/<name>.yaml``.
    """
    if isinstance(source, PretrainConfig):
        config = copy.deepcopy(source)
    elif isinstance(source, dict):
        config = PretrainConfig.from_dict(source)
    else:
        import yaml

        path = Path(source)
        if not path.exists():
            packaged = Path(__file__).resolve().parent.parent / "configs" / f"{path.stem}.yaml"
            if path.suffix in ("", ".yaml") and packaged.exists():
                path = packaged
            else:
                raise FileNotFoundError(f"config file {str(source)!r} not found (also looked "
                                        f"for {packaged})")
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
        config = PretrainConfig.from_dict(data)
    return config.replace(**overrides) if overrides else config
