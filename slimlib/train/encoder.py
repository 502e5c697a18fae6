"""The pretrained encoder: a timm ``VisionTransformer`` plus a pooling rule.

:class:`TinyViTEncoder` is what MoCo and MAE train and what :mod:`slimlib.train.embedded` hands
out: ``forward`` maps normalised images ``(B, C, H, W)`` to features ``(B, D)`` (the CLS
token or the mean of the patch tokens after the final norm). Its transformer blocks are
plain timm ``Block``s, so :func:`slimlib.slimming.slim` and
:func:`slimlib.train.slimmable.width` apply unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from slimlib.train.configs import FEATURES, ModelConfig

__all__ = ["TinyViTEncoder", "build_vit"]


def build_vit(config: ModelConfig, in_chans: int) -> VisionTransformer:
    """A headless timm ViT with a CLS token and a final LayerNorm over all tokens."""
    return VisionTransformer(
        img_size=config.img_size, patch_size=config.patch_size, in_chans=in_chans,
        embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias, num_classes=0,
        global_pool="token", class_token=True,
    )


class TinyViTEncoder(nn.Module):
    """The ViT encoder slimlib pretrains (MoCo / MAE), with a fixed pooled feature.

    Not to be confused with :class:`slimlib.models.Encoder`, the adapter every registry model
    is returned as; the embedded models wrap this one in a ``ModuleEncoder``.

    Args:
        vit: a timm ``VisionTransformer`` (its head is ignored).
        feature: ``"cls"`` (CLS token) or ``"mean"`` (mean of the patch tokens).
        resize: resize inputs whose side differs from the ViT's ``img_size`` (bilinear,
            antialiased) instead of failing.

    Shapes: ``forward(x)``: ``(B, C, H, W)`` -> ``(B, D)``;
    ``forward_tokens(x)``: -> ``(B, 1 + N, D)`` (prefix tokens first).
    """

    def __init__(self, vit: VisionTransformer, feature: str = "cls", resize: bool = True) -> None:
        super().__init__()
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}; got {feature!r}")
        self.vit = vit
        self.feature = feature
        self.resize = resize
        self.spec = None  # set by slimlib.train.embedded for the registered models

    @property
    def embed_dim(self) -> int:
        return int(self.vit.embed_dim)

    @property
    def img_size(self) -> int:
        return int(self.vit.patch_embed.img_size[0])

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.vit.num_prefix_tokens)

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W); got shape {tuple(x.shape)}")
        size = self.img_size
        if x.shape[-2:] != (size, size):
            if not self.resize:
                raise ValueError(f"expected {size}x{size} inputs; got {tuple(x.shape[-2:])}")
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
        return x

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens after the final norm, ``(B, 1 + N, D)``."""
        return self.vit.forward_features(self._fit(x))

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + N, D)`` -> ``(B, D)`` by the encoder's ``feature`` rule."""
        if self.feature == "cls":
            return tokens[:, 0]
        return tokens[:, self.num_prefix_tokens:].mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_tokens(x))

    def extra_repr(self) -> str:
        return f"feature={self.feature!r}, img_size={self.img_size}"
