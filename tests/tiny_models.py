"""Tiny models for the tests: :func:`tiny_vit` (a small timm ViT) and the ``module:function``
builders of ``slimlib.diagnose``'s tests (import path ``tests.tiny_models:build``)."""

from __future__ import annotations

import torch
from torch import nn


def build() -> nn.Module:
    """A 2-block timm ViT on 32 px RGB inputs (fast enough for tests)."""
    import timm

    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=0).eval()


def not_a_module() -> str:
    return "not a module"


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def conv() -> nn.Module:
    """A CNN: no transformer blocks, so slimlib must refuse it."""
    return _Conv()


def tiny_vit(**overrides):
    """A small timm VisionTransformer for fast architecture tests."""
    import timm

    kwargs = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3,
                  mlp_ratio=4.0, num_classes=0)
    kwargs.update(overrides)
    return timm.models.vision_transformer.VisionTransformer(**kwargs).eval()
