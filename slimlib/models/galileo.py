"""Galileo-nano (Tseng et al. 2025): slimlib's own implementation of the published encoder.

Galileo is a multimodal remote-sensing ViT (NASA Harvest / Ai2, arXiv:2502.09356). Its input is
split into **channel groups** (Sentinel-2 RGB, red edge, NIR 10 m, NIR 20 m, SWIR; Sentinel-1;
NDVI; ERA5; SRTM; ...); every group of every patch (and timestep) becomes one token. This module
builds the *whole* published encoder (every group's patch embedding, so ``encoder.pt`` loads
with strict key checking) and runs the single-timestep, Sentinel-2-only path slimlib needs:

* **tokens**: for each unmasked group ``g`` and each ``p x p`` patch, a flexible patch
  embedding (FlexiViT-style: the stored 8 x 8 kernels are resampled to ``p x p`` with the
  pseudo-inverse of the bicubic, antialiased resize, so ``p`` = 4 and 8 both work);
* **encodings** added to each token, four quarters of the width D = 128 concatenated:
  the group's learned channel embedding, the sinusoidal time-position (timestep 0), the
  sinusoidal month embedding and a 2-D sinusoidal position scaled by the ground sample
  distance of a token (``patch_size * 10 m / 10 m``);
* masked groups (S1, NDVI, ERA5, SRTM, DW, WC, ... and, in RGB mode, every S2 group but RGB)
  contribute no token; the authors' code builds them and removes them again, which is the same;
* 4 pre-norm blocks (``attn.q``, ``attn.k``, ``attn.v``, ``attn.proj``; ``mlp.fc1``, ``mlp.fc2``
  with GELU), then the exit LayerNorm, then the mean over the unmasked tokens (the authors'
  ``average_tokens``): the feature ``(B, 128)``.

The attention mask is skipped when no token is masked: every sample of a batch then has the
same token set, and an all-true boolean mask only forces SDPA off its fast path
(2.7x slower on CPU, see ``docs/models.md``).

The blocks expose ``.attn`` (separate q/k/v) and ``.mlp`` (timm ``Mlp``), so
:func:`slimlib.slim` slims them like any ViT.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

__all__ = [
    "GalileoAttention",
    "GalileoBlock",
    "GalileoNano",
    "FlexiPatchEmbed",
    "S2_GROUPS",
    "SPACE_TIME_GROUPS",
    "BASE_PATCH_SIZE",
    "PATCH_SIZES",
]

#: Galileo's space-time channel groups (name -> its band names), in the model's order.
SPACE_TIME_GROUPS: OrderedDict[str, tuple[str, ...]] = OrderedDict([
    ("S1", ("VV", "VH")),
    ("S2_RGB", ("B02", "B03", "B04")),
    ("S2_Red_Edge", ("B05", "B06", "B07")),
    ("S2_NIR_10m", ("B08",)),
    ("S2_NIR_20m", ("B8A",)),
    ("S2_SWIR", ("B11", "B12")),
    ("NDVI", ("NDVI",)),
])
#: The Sentinel-2 groups (the ones slimlib feeds), in the model's order.
S2_GROUPS: tuple[str, ...] = ("S2_RGB", "S2_Red_Edge", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR")
_SPACE_GROUPS = OrderedDict([("SRTM", 2), ("DW", 9), ("WC", 5)])
_TIME_GROUPS = OrderedDict([("ERA5", 2), ("TC", 3), ("VIIRS", 1)])
_STATIC_GROUPS = OrderedDict([("LS", 1), ("location", 3), ("DW_static", 9), ("WC_static", 5)])

#: Size of the stored patch-embedding kernels (``max_patch_size`` in ``config.json``).
BASE_PATCH_SIZE = 8
#: Patch sizes slimlib supports (and tests against the authors' reference outputs).
PATCH_SIZES = (4, 8)
#: Ground sample distance (m) the position encoding is relative to; EuroSAT is 10 m.
BASE_GSD_M = 10.0


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Galileo's 1-D sinusoidal encoding: ``(M,)`` positions -> ``(M, dim)`` = [sin | cos].

    Frequencies are ``10000 ** -(i / (2 * dim))`` for ``i < dim / 2`` (as in the authors' code).
    """
    if dim % 2:
        raise ValueError(f"dim must be even; got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / dim / 2.0)
    angles = positions.reshape(-1).float()[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim: int, rows: int, cols: int, scale: float) -> torch.Tensor:
    """2-D encoding ``(rows, cols, dim)``: first half encodes the column, second the row."""
    r = torch.arange(rows, dtype=torch.float32).repeat_interleave(cols) * scale
    c = torch.arange(cols, dtype=torch.float32).repeat(rows) * scale
    return torch.cat([sincos_1d(dim // 2, c), sincos_1d(dim // 2, r)], dim=1).view(rows, cols, dim)


def month_table(dim: int) -> torch.Tensor:
    """Sinusoidal month encoding ``(12, dim)``: month m at angle ``2 pi m / 12``."""
    angles = torch.arange(12, dtype=torch.float32) * (2 * math.pi / 12)
    half = angles[:, None].expand(12, dim // 2)
    return torch.cat([half.sin(), half.cos()], dim=1)


class FlexiPatchEmbed(nn.Module):
    """Patch embedding whose ``BASE_PATCH_SIZE`` kernel is resampled to any patch size.

    The kernel for patch size ``p`` is ``pinv(R) @ w`` where ``R`` is the bicubic, antialiased
    resize from ``base x base`` to ``p x p`` (FlexiViT, Beyer et al. 2023): the new kernel gives
    (in the least-squares sense) the same token for a patch as the old kernel for the patch
    upsampled. Shapes: ``x`` (B, C, H, W) -> tokens (B, H/p, W/p, D).
    """

    def __init__(self, in_chans: int, embed_dim: int, base: int = BASE_PATCH_SIZE) -> None:
        super().__init__()
        self.base = int(base)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=base, stride=base)
        self._pinv: dict[int, torch.Tensor] = {}

    def _pinv_for(self, size: int) -> torch.Tensor:
        if size not in self._pinv:
            n = self.base * self.base
            basis = torch.eye(n, dtype=torch.float64).view(n, 1, self.base, self.base)
            resized = F.interpolate(basis.float(), size=(size, size), mode="bicubic",
                                    antialias=True).reshape(n, size * size)
            self._pinv[size] = torch.linalg.pinv(resized.double())  # (p*p, base*base)
        return self._pinv[size]

    def kernel(self, size: int) -> torch.Tensor:
        """Conv kernel ``(D, C, size, size)`` for patch size ``size``."""
        weight = self.proj.weight
        if size == self.base:
            return weight
        out_c, in_c = weight.shape[:2]
        pinv = self._pinv_for(size).to(device=weight.device)
        flat = weight.reshape(out_c * in_c, -1).double() @ pinv.T
        return flat.to(weight.dtype).reshape(out_c, in_c, size, size)

    def forward(self, x: torch.Tensor, patch_size: int) -> torch.Tensor:
        out = F.conv2d(x, self.kernel(patch_size), self.proj.bias, stride=patch_size)
        return out.permute(0, 2, 3, 1)


class GalileoAttention(nn.Module):
    """Multi-head self-attention with separate ``q``, ``k``, ``v`` and ``proj`` Linear layers.

    Shapes: ``x`` (B, N, dim) -> (B, N, dim); ``attn_mask`` ``None`` or boolean, broadcastable
    to (B, heads, N, N), True = may attend.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = int(num_heads)
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, _ = x.shape
        q, k, v = (lin(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
                   for lin in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim))


class GalileoBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GalileoAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask)
        return x + self.mlp(self.norm2(x))


class GalileoNano(nn.Module):
    """The Galileo encoder (nano: D = 128, depth 4, 8 heads, MLP ratio 4, kernels 8 x 8).

    Parameter names follow ``encoder.pt`` one to one. ``forward`` takes the images of the
    unmasked Sentinel-2 groups and returns the exit-normed tokens.

    Random initialisation (``pretrained=False``) mirrors the authors': Xavier-uniform Linear
    weights with zero biases, PyTorch's default Conv2d init, zero channel embeddings and the
    fixed sinusoidal time/month tables; it draws from torch's global RNG.
    """

    def __init__(self, embed_dim: int = 128, depth: int = 4, num_heads: int = 8,
                 mlp_ratio: float = 4.0, max_sequence_length: int = 24) -> None:
        super().__init__()
        quarter = embed_dim // 4
        self.embed_dim = int(embed_dim)
        self.pos_embed = nn.Parameter(sincos_1d(quarter, torch.arange(max_sequence_length)),
                                      requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(month_table(quarter), freeze=True)
        self.s_t_channel_embed = nn.Parameter(torch.zeros(len(SPACE_TIME_GROUPS), quarter))
        self.sp_channel_embed = nn.Parameter(torch.zeros(len(_SPACE_GROUPS), quarter))
        self.t_channel_embed = nn.Parameter(torch.zeros(len(_TIME_GROUPS), quarter))
        self.st_channel_embed = nn.Parameter(torch.zeros(len(_STATIC_GROUPS), quarter))
        self.blocks = nn.ModuleList(GalileoBlock(embed_dim, num_heads, mlp_ratio)
                                    for _ in range(depth))
        self.space_time_embed = nn.ModuleDict(
            {g: FlexiPatchEmbed(len(b), embed_dim) for g, b in SPACE_TIME_GROUPS.items()})
        self.space_embed = nn.ModuleDict(
            {g: FlexiPatchEmbed(c, embed_dim) for g, c in _SPACE_GROUPS.items()})
        self.time_embed = nn.ModuleDict(
            {g: nn.Linear(c, embed_dim) for g, c in _TIME_GROUPS.items()})
        self.static_embed = nn.ModuleDict(
            {g: nn.Linear(c, embed_dim) for g, c in _STATIC_GROUPS.items()})
        self.norm = nn.LayerNorm(embed_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def embed(self, groups: dict[str, torch.Tensor], *, patch_size: int, month: int
              ) -> torch.Tensor:
        """Tokens ``(B, h*w*G, D)`` of the given groups, encodings added.

        Args:
            groups: group name -> normalised images ``(B, C_g, H, W)`` (its bands in the
                group's order); insertion order is the token order within a patch.
            patch_size: patch side in pixels (must divide H and W).
            month: month index 0 (January) ... 11.
        """
        names = list(groups)
        unknown = [g for g in names if g not in SPACE_TIME_GROUPS]
        if unknown or not names:
            raise ValueError(f"groups must be a non-empty subset of {list(SPACE_TIME_GROUPS)}; "
                             f"got {names}")
        first = groups[names[0]]
        B, _, H, W = first.shape
        if H % patch_size or W % patch_size:
            raise ValueError(f"input {H}x{W} is not divisible by patch_size {patch_size}")
        h, w = H // patch_size, W // patch_size
        tokens = torch.stack([self.space_time_embed[g](groups[g], patch_size) for g in names],
                             dim=3)  # (B, h, w, G, D)
        quarter = self.embed_dim // 4
        index = torch.tensor([list(SPACE_TIME_GROUPS).index(g) for g in names],
                             device=first.device)
        channel = self.s_t_channel_embed.index_select(0, index)  # (G, q)
        time = self.pos_embed[0].expand(len(names), quarter)
        month_vec = self.month_embed.weight[int(month)].expand(len(names), quarter)
        space = sincos_2d(quarter, h, w, patch_size * BASE_GSD_M / BASE_GSD_M).to(first)
        enc = torch.cat([
            torch.cat([channel, time, month_vec], dim=1).expand(h, w, -1, -1),
            space[:, :, None, :].expand(h, w, len(names), quarter),
        ], dim=-1)  # (h, w, G, D)
        return (tokens + enc.to(tokens.dtype)).reshape(B, h * w * len(names), self.embed_dim)

    def forward_tokens(self, tokens: torch.Tensor, mask: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Blocks + exit norm. ``tokens`` (B, N, D); ``mask`` (B, N) bool, True = masked."""
        attn_mask = None
        if mask is not None and bool(mask.any()):
            attn_mask = ~mask[:, None, None, :]  # (B, 1, 1, N): True = may attend
        for block in self.blocks:
            tokens = block(tokens, attn_mask=attn_mask)
        return self.norm(tokens)

    def forward(self, groups: dict[str, torch.Tensor], *, patch_size: int, month: int,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Exit-normed tokens ``(B, N, D)`` of ``groups`` (see :meth:`embed`)."""
        return self.forward_tokens(self.embed(groups, patch_size=patch_size, month=month), mask)


def average_tokens(tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over unmasked tokens: ``(B, N, D)`` (+ ``(B, N)`` bool, True = masked) -> (B, D)."""
    if mask is None:
        return tokens.mean(dim=1)
    keep = (~mask).to(tokens.dtype).unsqueeze(-1)
    return (tokens * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
