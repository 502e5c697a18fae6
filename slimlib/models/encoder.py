"""A uniform ``(B, C, H, W) -> (B, D)`` encoder interface over every registered backbone.

Each adapter holds the original backbone as ``.backbone`` and only supplies the extra inputs
a model needs (DOFA's wavelengths, Copernicus-FM's wavelengths/bandwidths and metadata,
Panopticon's ``{'imgs', 'chn_ids'}`` dict) and the pooling of its own evaluation convention.
The transformer blocks are never wrapped or replaced, so :func:`slimlib.slim` finds and slims
them in place of the adapter's deep copy.
"""

from __future__ import annotations

import torch
from torch import nn

from slimlib.specs import ModelSpec

__all__ = [
    "Encoder",
    "TimmViTEncoder",
    "DOFAEncoder",
    "CopernicusFMEncoder",
    "PanopticonEncoder",
    "TerraMindEncoder",
    "PrithviEncoder",
    "ModuleEncoder",
]


class Encoder(nn.Module):
    """Frozen-feature encoder: ``forward(x (B, C, H, W)) -> (B, D)``, ``D = spec.embed_dim``.

    Args:
        backbone: the wrapped model (kept as ``self.backbone``).
        spec: the :class:`~slimlib.specs.ModelSpec` describing the expected input.
        dynamic_img_size: whether inputs other than ``spec.input_size`` are allowed (the
            position embedding is interpolated). Fixed-size models reject other sizes.
    """

    def __init__(self, backbone: nn.Module, spec: ModelSpec, *,
                 dynamic_img_size: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.spec = spec
        self.dynamic_img_size = bool(dynamic_img_size)

    @property
    def embed_dim(self) -> int:
        return int(self.spec.embed_dim)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, spec.in_chans, H, W)`` of a usable size."""
        spec = self.spec
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{spec.name} expects a tensor (B, C, H, W); got {shape}")
        if x.shape[1] != spec.in_chans:
            raise ValueError(
                f"{spec.name} expects {spec.in_chans} channels {spec.bands}; got {x.shape[1]}. "
                "Select and order the bands as in spec.bands (slimlib.data does this)."
            )
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if self.dynamic_img_size:
            if h < spec.patch_size or w < spec.patch_size:
                raise ValueError(f"{spec.name}: input {h}x{w} is smaller than one "
                                 f"{spec.patch_size}x{spec.patch_size} patch")
        elif (h, w) != (spec.input_size, spec.input_size):
            raise ValueError(
                f"{spec.name} has a fixed input size {spec.input_size}x{spec.input_size}; got "
                f"{h}x{w}. Resize the images to spec.input_size first."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_features(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, D)`` of a validated input."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = self.spec
        return (f"name={s.name!r}, in_chans={s.in_chans}, input_size={s.input_size}, "
                f"embed_dim={s.embed_dim}, feature={s.feature!r}")


def _pool_tokens(tokens: torch.Tensor, feature: str, num_prefix: int) -> torch.Tensor:
    """``(B, N, D)`` normalised tokens -> ``(B, D)``: first (CLS) token or patch-token mean."""
    if feature == "cls":
        if num_prefix < 1:
            raise ValueError("feature='cls' needs a class token; this backbone has none")
        return tokens[:, 0]
    if feature == "mean":
        return tokens[:, num_prefix:].mean(dim=1)
    raise ValueError(f"feature must be 'cls' or 'mean'; got {feature!r}")


class TimmViTEncoder(Encoder):
    """timm ``VisionTransformer`` (incl. torchgeo's SSL4EO/SoftCon ViTs and ScaleMAE).

    Feature: ``forward_features`` (final norm applied to all tokens), then the CLS token or
    the mean of the patch tokens, excluding class and register tokens (``num_prefix_tokens``).
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone.forward_features(x)
        return _pool_tokens(tokens, self.spec.feature, int(self.backbone.num_prefix_tokens))


class DOFAEncoder(Encoder):
    """torchgeo ``DOFA``: passes the spec's wavelengths (µm); DOFA pools itself.

    torchgeo builds DOFA with ``global_pool=True``: mean of patch tokens, then ``fc_norm``.
    """

    def __init__(self, backbone: nn.Module, spec: ModelSpec) -> None:
        super().__init__(backbone, spec, dynamic_img_size=False)
        if spec.wavelengths_um is None or len(spec.wavelengths_um) != spec.in_chans:
            raise ValueError(f"{spec.name}: DOFA needs one wavelength per band")
        self.wavelengths = [float(w) for w in spec.wavelengths_um]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x, self.wavelengths)


class CopernicusFMEncoder(Encoder):
    """torchgeo ``CopernicusFM`` in spectral mode with unknown (NaN) location/time/area.

    Wavelengths and bandwidths are passed in nm; the learned "unknown metadata" tokens are used
    for the geo/time/area embeddings. Pools as the model does (patch-token mean + ``fc_norm``).
    """

    def __init__(self, backbone: nn.Module, spec: ModelSpec,
                 bandwidths_nm: tuple[float, ...]) -> None:
        super().__init__(backbone, spec, dynamic_img_size=True)
        if spec.wavelengths_um is None or len(spec.wavelengths_um) != spec.in_chans:
            raise ValueError(f"{spec.name}: Copernicus-FM needs one wavelength per band")
        if len(bandwidths_nm) != spec.in_chans:
            raise ValueError(f"{spec.name}: Copernicus-FM needs one bandwidth per band")
        self.wavelengths_nm = [float(w) * 1000.0 for w in spec.wavelengths_um]
        self.bandwidths_nm = [float(b) for b in bandwidths_nm]

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{self.spec.name} needs square inputs; got {tuple(x.shape[-2:])}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        metadata = torch.full((x.shape[0], 4), float("nan"), device=x.device)
        return self.backbone.forward_features(
            x, metadata, wavelengths=self.wavelengths_nm, bandwidths=self.bandwidths_nm,
            input_mode="spectral",
        )


class PanopticonEncoder(Encoder):
    """torchgeo ``Panopticon``: builds ``{'imgs': x, 'chn_ids': (B, C)}`` (wavelengths in nm).

    Returns the model's own output, the normalised CLS token.
    """

    def __init__(self, backbone: nn.Module, spec: ModelSpec) -> None:
        super().__init__(backbone, spec, dynamic_img_size=False)
        if spec.wavelengths_um is None or len(spec.wavelengths_um) != spec.in_chans:
            raise ValueError(f"{spec.name}: Panopticon needs one wavelength per band")
        ids = torch.tensor([round(w * 1000.0) for w in spec.wavelengths_um], dtype=torch.float32)
        self.register_buffer("chn_ids", ids, persistent=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # A fresh (B, C) copy each call: Panopticon's channel embedding edits its input in place.
        chn_ids = self.chn_ids.unsqueeze(0).repeat(x.shape[0], 1)
        return self.backbone({"imgs": x, "chn_ids": chn_ids})


class TerraMindEncoder(Encoder):
    """TerraTorch ``TerraMindViT`` (one image modality): mean of the normalised tokens.

    TerraMind has no class token; its last layer output (after ``encoder_norm``) is averaged.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(x)[-1]
        return tokens.mean(dim=1)


class PrithviEncoder(Encoder):
    """TerraTorch ``PrithviViT`` (one frame): mean of the normalised patch tokens (CLS dropped)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone.forward_features(x)[-1]
        return tokens[:, 1:].mean(dim=1)


class ModuleEncoder(Encoder):
    """A backbone that already maps ``(B, C, H, W) -> (B, D)`` (slimlib's embedded models)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
