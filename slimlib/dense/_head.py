"""Patch-token maps from several blocks of a frozen ViT and a light multi-scale head on them.

* :func:`token_maps` runs a (slimmed) frozen encoder with forward hooks on the chosen
  transformer blocks (:func:`slimlib.slimming.find_blocks`) and returns each block's patch
  tokens as a ``(N, L, D, h, w)`` map: class/register tokens are dropped (timm ViTs, Prithvi),
  and a model with several tokens per patch (Galileo's channel groups, ordered
  ``h, w, group``) is averaged over them.
* :class:`DenseHead` is a SegFormer-style decoder: per level LayerNorm + linear projection to a
  common width, bilinear upsampling to 4x the token grid (at most the mask size), concatenation,
  a 1x1 fusion conv with BatchNorm + ReLU, dropout and a 1x1 classifier; logits are upsampled
  bilinearly to the mask resolution. For change detection each level gets both dates'
  tokens (``fusion="concat"``: ``[a, b]``; ``"diff"``: ``|a - b|``).
* :func:`train_head` fits it with AdamW and a cosine schedule, seeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from slimlib._validation import check_int
from slimlib.data import IGNORE
from slimlib.slimming import find_blocks

FUSIONS = ("concat", "diff")


def default_levels(depth: int, n: int = 4) -> list[int]:
    """``n`` block indices spread evenly over ``depth`` blocks, ending at the last one."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1; got {depth}")
    return sorted({max(0, math.ceil(depth * (i + 1) / n) - 1) for i in range(n)})


def patch_size_of(encoder: nn.Module) -> int:
    """The encoder's patch side: Galileo's ``patch_size``, a spec's, or timm's patch embed."""
    p = getattr(encoder, "patch_size", None)
    if isinstance(p, int) and not isinstance(p, bool):
        return p
    spec = getattr(encoder, "spec", None)
    if spec is not None and getattr(spec, "patch_size", None):
        return int(spec.patch_size)
    embed = getattr(getattr(encoder, "backbone", encoder), "patch_embed", None)
    size = getattr(embed, "patch_size", None)
    if size is not None:
        return int(size[0] if isinstance(size, tuple | list) else size)
    raise ValueError(f"cannot tell the patch size of {type(encoder).__name__}; give it a "
                     "ModelSpec (spec.patch_size) or a timm patch_embed")


def to_grid(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(B, N, D)`` block output -> ``(B, D, h, w)`` patch map.

    ``N = h*w + k`` with ``0 <= k < h*w``: the first ``k`` (prefix) tokens are dropped;
    ``N = G*h*w``: ``G`` tokens per patch (order ``h, w, G``) are averaged.
    """
    b, n, d = tokens.shape
    grid = h * w
    if n >= 2 * grid and n % grid == 0:
        out = tokens.reshape(b, h, w, n // grid, d).mean(dim=3)
    elif grid <= n < 2 * grid:
        out = tokens[:, n - grid:].reshape(b, h, w, d)
    else:
        raise ValueError(f"a block returned {n} tokens, which does not fit a {h}x{w} patch grid "
                         "(expected h*w plus a few prefix tokens, or a multiple of h*w)")
    return out.permute(0, 3, 1, 2)


@torch.no_grad()
def token_maps(encoder: nn.Module, batches, *, levels: Sequence[int] | None = None,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.float16,
               progress: bool = False, total: int | None = None) -> torch.Tensor:
    """Run ``encoder`` on prepared batches and collect patch-token maps of ``levels``.

    Args:
        encoder: a frozen encoder (slimlib ``Encoder`` or a timm ViT); kept in eval mode.
        batches: iterable of prepared inputs ``(B, C, S, S)``.
        levels: block indices (default :func:`default_levels`: four, evenly spaced).
        dtype: storage dtype of the returned maps (on CPU).

    Returns:
        ``(N, L, D, h, w)`` tensor.
    """
    from tqdm.auto import tqdm

    blocks = [b for _, b in find_blocks(encoder)]
    levels = default_levels(len(blocks)) if levels is None else list(levels)
    bad = [i for i in levels if not (-len(blocks) <= i < len(blocks))]
    if bad or not levels:
        raise ValueError(f"levels must be non-empty block indices in [0, {len(blocks)}); "
                         f"got {levels}")
    p = patch_size_of(encoder)
    captured: dict[int, torch.Tensor] = {}
    hooks = [blocks[i].register_forward_hook(
        lambda _m, _i, out, k=k: captured.__setitem__(k, out[0] if isinstance(out, tuple)
                                                      else out)) for k, i in enumerate(levels)]
    was_training = encoder.training
    encoder.eval().to(device)
    out = []
    try:
        for x in tqdm(batches, desc="token maps", total=total, disable=not progress,
                      leave=False):
            captured.clear()
            encoder(x.to(device))
            h, w = x.shape[-2] // p, x.shape[-1] // p
            out.append(torch.stack([to_grid(captured[k].float(), h, w)
                                    for k in range(len(levels))], dim=1).to("cpu", dtype))
    finally:
        for hook in hooks:
            hook.remove()
        encoder.train(was_training)
    if not out:
        raise ValueError("token_maps got no batches")
    return torch.cat(out)


def combine_dates(a: torch.Tensor, b: torch.Tensor, fusion: str) -> torch.Tensor:
    """Per-level combination of two dates' maps ``(N, L, D, h, w)`` along ``D``."""
    if fusion == "concat":
        return torch.cat([a, b], dim=2)
    if fusion == "diff":
        return (a.float() - b.float()).abs().to(a.dtype)
    raise ValueError(f"fusion must be one of {FUSIONS}; got {fusion!r}")


class DenseHead(nn.Module):
    """SegFormer-style multi-level head: ``(B, L, D, h, w)`` maps -> ``(B, K, H, W)`` logits."""

    def __init__(self, levels: int, in_dim: int, num_classes: int, *, dim: int = 128,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if min(levels, in_dim, num_classes, dim) < 1:
            raise ValueError("levels, in_dim, num_classes and dim must be positive")
        self.norms = nn.ModuleList(nn.LayerNorm(in_dim) for _ in range(levels))
        self.proj = nn.ModuleList(nn.Linear(in_dim, dim) for _ in range(levels))
        self.fuse = nn.Sequential(nn.Conv2d(levels * dim, dim, 1, bias=False),
                                  nn.BatchNorm2d(dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(dim, num_classes, 1)

    def forward(self, maps: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        _, n_levels, _, h, w = maps.shape
        up = (min(4 * h, out_size[0]), min(4 * w, out_size[1]))
        feats = []
        for k in range(n_levels):
            x = maps[:, k].permute(0, 2, 3, 1)                      # (B, h, w, D)
            x = self.proj[k](self.norms[k](x)).permute(0, 3, 1, 2)  # (B, dim, h, w)
            feats.append(F.interpolate(x, size=up, mode="bilinear", align_corners=False))
        logits = self.classify(self.drop(self.fuse(torch.cat(feats, dim=1))))
        return F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)


def train_head(maps: torch.Tensor, masks: torch.Tensor, num_classes: int, *, seed: int = 0,
               epochs: int = 20, batch_size: int = 16, lr: float = 1e-3,
               weight_decay: float = 1e-2, dim: int = 128, device: torch.device | str = "cpu",
               progress: bool = False) -> DenseHead:
    """Fit a :class:`DenseHead` on frozen maps ``(N, L, D, h, w)`` and masks ``(N, H, W)``.

    Cross-entropy over labelled pixels (mask -1 ignored), AdamW, cosine learning-rate decay,
    ``torch.manual_seed(seed)`` for the initialisation and a seeded generator for the batch
    order, so a run is reproducible on one device.
    """
    from tqdm.auto import tqdm

    if maps.shape[0] != masks.shape[0]:
        raise ValueError(f"{maps.shape[0]} maps but {masks.shape[0]} masks")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("dim", dim)):
        check_int(v, name)
    if not (masks != IGNORE).any():
        raise ValueError("no labelled pixel to train on (every mask value is -1)")
    torch.manual_seed(seed)
    head = DenseHead(maps.shape[1], maps.shape[2], num_classes, dim=dim).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    n = maps.shape[0]
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)))
    gen = torch.Generator().manual_seed(seed)
    size = tuple(masks.shape[-2:])
    head.train()
    for _ in tqdm(range(epochs), desc="train head", disable=not progress, leave=False):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            y = masks[idx].to(device)
            if not (y != IGNORE).any():       # only padding: no loss to take
                continue
            x = maps[idx].to(device).float()
            loss = F.cross_entropy(head(x, size), y, ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


@torch.no_grad()
def predict(head: DenseHead, maps: torch.Tensor, out_size: tuple[int, int], *,
            batch_size: int = 32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Argmax class map ``(N, H, W)`` int64 of ``head`` on ``maps``."""
    head.eval().to(device)
    preds = [head(maps[i:i + batch_size].to(device).float(), out_size).argmax(1).cpu()
             for i in range(0, maps.shape[0], batch_size)]
    return torch.cat(preds)
