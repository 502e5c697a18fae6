"""Masked autoencoder for timm ViTs (He et al., CVPR 2022), with slimmable distillation.

The encoder sees only the kept patch tokens (plus the CLS token) of a random
``1 - mask_ratio`` share; a light transformer decoder (timm ``Block``s, fixed 2-D sin-cos
positions, a learned mask token) predicts the pixels of every patch; the loss is the MSE
on the masked patches, optionally against per-patch normalised pixels (``norm_pix_loss``).

Slimmable training (the paper leaves the MAE target open; our choice): a sub-width runs the
*encoder* at width s on the same masked input (same mask), the decoder stays full width,
and the loss is the MSE between its pixel predictions and the full width's *detached*
predictions on the masked patches. The full width alone carries the reconstruction loss,
as the full network alone sees the labels in US-Nets' in-place distillation. Only the
encoder is slimmed at evaluation, so only the encoder is switched in training, and (unless
``slimmable.train_heads``) the decoder's parameters learn from the full width only: the
loop freezes them during the sub-width passes, while gradients still flow through them.
``distill="none"`` gives every width the reconstruction loss instead.
"""

from __future__ import annotations

import numpy as np
import torch
from timm.models.vision_transformer import Block
from torch import nn

from slimlib.train.augment import Augment
from slimlib.train.configs import MAEConfig
from slimlib.train.encoder import TinyViTEncoder

__all__ = ["MAE", "sincos_pos_embed_2d", "patchify", "random_masking"]


def sincos_pos_embed_2d(dim: int, grid: int, prefix: int = 1) -> torch.Tensor:
    """Fixed 2-D sin-cos positions ``(1, prefix + grid*grid, dim)``; prefix rows are zero."""
    if dim % 4:
        raise ValueError(f"sin-cos positions need a dim divisible by 4; got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))
    ys, xs = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64),
                         indexing="ij")
    parts = []
    for pos in (ys.reshape(-1), xs.reshape(-1)):
        angles = np.outer(pos, omega)
        parts += [np.sin(angles), np.cos(angles)]
    emb = np.concatenate(parts, axis=1)
    emb = np.concatenate([np.zeros((prefix, dim)), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, N, patch*patch*C)`` in row-major patch order."""
    B, C, H, W = images.shape
    h, w = H // patch, W // patch
    x = images.reshape(B, C, h, patch, w, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, patch * patch * C)


def random_masking(noise: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor,
                                                            torch.Tensor]:
    """Per-sample random masking from uniform ``noise`` ``(B, N)``.

    Returns:
        ``ids_keep`` ``(B, keep)``, ``ids_restore`` ``(B, N)`` and ``mask`` ``(B, N)``
        (1 = masked, in the original patch order).
    """
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones_like(noise)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore)


class MAE(nn.Module):
    """MAE around a :class:`TinyViTEncoder` (its ``feature`` is used only after pretraining)."""

    def __init__(self, encoder: TinyViTEncoder, config: MAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        vit = encoder.vit
        self.patch = int(vit.patch_embed.patch_size[0])
        grid = vit.patch_embed.grid_size
        if grid[0] != grid[1]:
            raise ValueError(f"MAE needs a square patch grid; got {grid}")
        self.num_patches = int(grid[0] * grid[1])
        self.in_chans = int(vit.patch_embed.proj.in_channels)
        prefix = int(vit.num_prefix_tokens)
        dd = config.decoder_dim
        self.decoder_embed = nn.Linear(encoder.embed_dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_2d(dd, int(grid[0]), prefix),
                             persistent=False)
        self.decoder_blocks = nn.Sequential(*[
            Block(dd, config.decoder_heads, mlp_ratio=4.0, qkv_bias=True)
            for _ in range(config.decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(dd, eps=1e-6)
        self.decoder_pred = nn.Linear(dd, self.patch * self.patch * self.in_chans)
        nn.init.normal_(self.mask_token, std=0.02)
        for module in (self.decoder_embed, self.decoder_pred, *self.decoder_blocks.modules()):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def keep(self) -> int:
        return max(1, round(self.num_patches * (1 - self.config.mask_ratio)))

    def make_inputs(self, x: torch.Tensor, augment: Augment,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One augmented view and the masking noise ``(B, N)``."""
        view = augment(x, generator)
        noise = torch.rand(view.shape[0], self.num_patches, generator=generator,
                           device=view.device)
        return view, noise

    def encode(self, images: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Encoder tokens of the kept patches, ``(B, prefix + keep, D)``."""
        vit = self.encoder.vit
        x = vit._pos_embed(vit.patch_embed(self.encoder._fit(images)))
        prefix = vit.num_prefix_tokens
        patches = x[:, prefix:]
        idx = ids_keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        x = torch.cat([x[:, :prefix], torch.gather(patches, 1, idx)], dim=1)
        return vit.norm(vit.blocks(vit.norm_pre(x)))

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Pixel predictions for every patch, ``(B, N, patch*patch*C)``."""
        prefix = self.encoder.num_prefix_tokens
        x = self.decoder_embed(latent)
        B, N = ids_restore.shape
        masked = self.mask_token.expand(B, N - (x.shape[1] - prefix), -1)
        tokens = torch.cat([x[:, prefix:], masked], dim=1)
        idx = ids_restore.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
        x = torch.cat([x[:, :prefix], torch.gather(tokens, 1, idx)], dim=1)
        x = self.decoder_norm(self.decoder_blocks(x + self.decoder_pos_embed))
        return self.decoder_pred(x[:, prefix:])

    def target(self, images: torch.Tensor) -> torch.Tensor:
        """Per-patch pixel targets (normalised per patch with ``norm_pix_loss``)."""
        t = patchify(self.encoder._fit(images), self.patch)
        if self.config.norm_pix_loss:
            mean = t.mean(dim=-1, keepdim=True)
            var = t.var(dim=-1, keepdim=True)
            t = (t - mean) / (var + 1e-6).sqrt()
        return t

    @staticmethod
    def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def predict(self, images: torch.Tensor, noise: torch.Tensor):
        ids_keep, ids_restore, mask = random_masking(noise, self.keep)
        return self.decode(self.encode(images, ids_keep), ids_restore), mask

    def full_loss(self, inputs: tuple[torch.Tensor, torch.Tensor]):
        """Reconstruction loss at the current (widest) width and detached targets."""
        images, noise = inputs
        pred, mask = self.predict(images, noise)
        loss = self.masked_mse(pred, self.target(images), mask)
        return loss, {"pred": pred.detach(), "mask": mask}

    def sub_loss(self, inputs: tuple[torch.Tensor, torch.Tensor], targets: dict,
                 distill: str = "inplace") -> torch.Tensor:
        """Sub-width loss: MSE to the full width's predictions (or to the pixels)."""
        images, noise = inputs
        pred, mask = self.predict(images, noise)
        goal = targets["pred"] if distill == "inplace" else self.target(images)
        return self.masked_mse(pred, goal, mask)

    def after_step(self, progress: float) -> dict[str, float]:
        return {}
