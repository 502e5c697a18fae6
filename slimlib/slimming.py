"""Post-hoc width slimming of ViT encoders (Hackel et al. 2026, Sec. 3).

One width factor ``s`` in (0, 1] is applied uniformly to every transformer block:

* **FFN**: keep ``d_h' = max(1, floor(s * d_h))`` hidden units (rows of ``fc1`` and its
  bias, columns of ``fc2``; the bias of ``fc2`` is kept whole).
* **Attention**: keep *all* heads; in each head keep ``d_k' = max(1, floor(s * d_k))``
  dimensions of Q, K and V (rows of the fused ``qkv`` weight and bias) and the matching
  input columns of the output projection. The softmax scale becomes ``1/sqrt(d_k')``
  (``scale="slimmed"``, the paper's choice) or stays ``1/sqrt(d_k)`` (``scale="original"``).

Patch and position embeddings, class/register tokens, LayerNorms, LayerScale, the residual
width and any head are left untouched. The result is a physically smaller copy: no masks.

Supported blocks are any module with ``.attn`` and ``.mlp`` children (timm ``Block``,
``ResPostBlock``, the blocks torchgeo's DOFA / Copernicus-FM / Panopticon / Scale-MAE /
SSL4EO ViTs are built from) whose attention is timm's ``Attention`` (or an already slimmed
:class:`SlimAttention`) and whose FFN is timm's ``Mlp``, ``GluMlp`` or ``SwiGLU``.
Anything else raises ``TypeError``; blocks are never skipped silently.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from timm.layers import Attention, GluMlp, Mlp, SwiGLU
from torch import nn

from slimlib._validation import check_choice, check_width, slimmed_dim

__all__ = ["SlimAttention", "slim", "describe", "find_blocks", "PARTS", "ORDERS", "SCALES"]

PARTS = ("attn", "ffn")
ORDERS = ("first", "last", "random")
SCALES = ("slimmed", "original")
_ATTN_TYPES: tuple[type[nn.Module], ...] = (Attention,)
_FFN_TYPES: tuple[type[nn.Module], ...] = (Mlp, GluMlp, SwiGLU)


class SlimAttention(nn.Module):
    """Multi-head self-attention with an explicit per-head width and softmax scale.

    Drop-in for timm's ``Attention`` (same ``forward(x, attn_mask=None, is_causal=False)``
    signature and submodule names). Both the fused (SDPA) and the manual path use
    ``self.scale``, so slicing can never change the temperature silently.

    Shapes: ``x`` (B, N, dim) -> (B, N, dim_out); ``qkv`` maps dim -> 3 * num_heads * head_dim.
    """

    def __init__(self, source: nn.Module, keep: torch.Tensor, scale: float) -> None:
        """Build from a timm ``Attention`` (or ``SlimAttention``) keeping per-head dims ``keep``.

        Args:
            source: the module to slim; it is not modified.
            keep: sorted 1-D LongTensor of per-head indices in ``[0, source.head_dim)``, or a
                (num_heads, d') tensor with one index set per head.
            scale: softmax scale used on every attention path.
        """
        super().__init__()
        heads, head_dim = int(source.num_heads), int(source.head_dim)
        keep = keep if keep.ndim == 2 else keep.unsqueeze(0).expand(heads, -1)
        rows = (torch.arange(heads).unsqueeze(1) * head_dim + keep).reshape(-1)  # (H*d',)
        attn_dim = heads * head_dim
        qkv_rows = torch.cat([rows + i * attn_dim for i in range(3)])

        self.num_heads = heads
        self.head_dim = int(keep.shape[1])
        self.full_head_dim = int(getattr(source, "full_head_dim", head_dim))
        self.attn_dim = heads * self.head_dim
        self.scale = float(scale)
        self.fused_attn = bool(getattr(source, "fused_attn", True))
        self.qkv = _slice_linear(source.qkv, rows=qkv_rows)
        self.q_norm = _slice_norm(source.q_norm, keep[0]) if _same_sets(keep) else None
        self.k_norm = _slice_norm(source.k_norm, keep[0]) if _same_sets(keep) else None
        if self.q_norm is None:
            if not (isinstance(source.q_norm, nn.Identity) and isinstance(source.k_norm, nn.Identity)):
                raise ValueError("order='random' with per-head index sets is not supported "
                                 "for attention with qk-norm; use order='first' or 'last'")
            self.q_norm, self.k_norm = nn.Identity(), nn.Identity()
        self.attn_drop = copy.deepcopy(source.attn_drop)
        self.norm = _slice_norm(source.norm, rows)
        gate = getattr(source, "gate", None)
        self.gate = _slice_linear(gate, rows=rows) if gate is not None else None
        self.proj = _slice_linear(source.proj, cols=rows)
        self.proj_drop = copy.deepcopy(source.proj_drop)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        drop = self.attn_drop.p if self.training else 0.0
        if self.fused_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=drop, is_causal=is_causal, scale=self.scale
            )
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if is_causal:
                attn = attn + attn.new_full((N, N), float("-inf")).triu_(1)
            elif attn_mask is not None:
                if attn_mask.dtype == torch.bool:
                    attn = attn.masked_fill(~attn_mask, float("-inf"))
                else:
                    attn = attn + attn_mask
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v
        x = self.norm(x.transpose(1, 2).reshape(B, N, self.attn_dim))
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return (f"num_heads={self.num_heads}, head_dim={self.head_dim} (of {self.full_head_dim}), "
                f"scale={self.scale:.5g}, fused_attn={self.fused_attn}")


def _same_sets(keep: torch.Tensor) -> bool:
    return bool((keep == keep[0]).all())


def _slice_linear(
    layer: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    """A new ``nn.Linear`` holding ``layer``'s weight rows/cols (bias follows the rows).

    ``index_select`` already returns new storage, so nothing is cloned twice, and the new
    layer skips its random initialisation (it would be overwritten at once).
    """
    weight = layer.weight.detach()
    weight = weight.index_select(0, rows.to(weight.device)) if rows is not None else weight
    weight = weight.index_select(1, cols.to(weight.device)) if cols is not None else weight
    if rows is None and cols is None:
        weight = weight.clone()
    out = torch.nn.utils.skip_init(nn.Linear, weight.shape[1], weight.shape[0],
                                   bias=layer.bias is not None, device=weight.device,
                                   dtype=weight.dtype)
    out.weight = nn.Parameter(weight, requires_grad=layer.weight.requires_grad)
    if layer.bias is not None:
        bias = layer.bias.detach()
        bias = bias.index_select(0, rows.to(bias.device)) if rows is not None else bias.clone()
        out.bias = nn.Parameter(bias, requires_grad=layer.bias.requires_grad)
    out.train(layer.training)
    return out


def _slice_norm(norm: nn.Module, keep: torch.Tensor) -> nn.Module:
    """Slice a LayerNorm/RMSNorm over a slimmed feature axis; Identity stays Identity."""
    if isinstance(norm, nn.Identity):
        return nn.Identity()
    new = copy.deepcopy(norm)
    size = int(keep.numel())
    if hasattr(new, "normalized_shape"):
        new.normalized_shape = (size,)
    for name in ("weight", "bias"):
        param = getattr(norm, name, None)
        if isinstance(param, torch.Tensor):
            setattr(new, name, nn.Parameter(param.detach().index_select(0, keep).clone()))
    return new


def _indices(full: int, kept: int, order: str, gen: torch.Generator | None) -> torch.Tensor:
    if order == "first":
        return torch.arange(kept)
    if order == "last":
        return torch.arange(full - kept, full)
    return torch.randperm(full, generator=gen)[:kept].sort().values


def _head_indices(heads: int, full: int, kept: int, order: str, gen: torch.Generator | None):
    if order != "random":
        return _indices(full, kept, order, gen)
    return torch.stack([_indices(full, kept, order, gen) for _ in range(heads)])


_FFN_LINEARS = ("fc1", "fc1_g", "fc1_x", "fc2")


def _slim_ffn(source: nn.Module, target: nn.Module, keep: torch.Tensor) -> None:
    """Give ``target`` (the copy's FFN) the sliced layers of ``source`` (the original FFN)."""
    if isinstance(source, SwiGLU):
        target.fc1_g = _slice_linear(source.fc1_g, rows=keep)
        target.fc1_x = _slice_linear(source.fc1_x, rows=keep)
    elif isinstance(source, GluMlp):
        half = source.fc1.out_features // 2
        target.fc1 = _slice_linear(source.fc1, rows=torch.cat([keep, keep + half]))
    else:
        target.fc1 = _slice_linear(source.fc1, rows=keep)
    target.norm = _slice_norm(source.norm, keep)
    target.fc2 = _slice_linear(source.fc2, cols=keep)


def _skip_memo(blocks: list[tuple[str, nn.Module]], parts: Sequence[str]) -> dict[int, None]:
    """``copy.deepcopy`` memo that leaves out the tensors slimming replaces anyway.

    They are sliced from the original model, so copying them first would only double the
    memory traffic (a ViT-B holds ~340 MB of such weights).
    """
    memo: dict[int, None] = {}
    for _, block in blocks:
        if "attn" in parts:
            memo.update((id(p), None) for p in block.attn.parameters())
        if "ffn" in parts:
            for name in _FFN_LINEARS:
                layer = getattr(block.mlp, name, None)
                if layer is not None:
                    memo.update((id(p), None) for p in layer.parameters())
    return memo


def ffn_hidden(mlp: nn.Module) -> int:
    """Hidden width d_h of a supported FFN."""
    return int(mlp.fc2.in_features)


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Transformer blocks of ``model``: modules with both ``.attn`` and ``.mlp`` children."""
    blocks = [
        (name, module) for name, module in model.named_modules()
        if isinstance(getattr(module, "attn", None), nn.Module)
        and isinstance(getattr(module, "mlp", None), nn.Module)
    ]
    if not blocks:
        raise TypeError(
            f"{type(model).__name__} has no transformer blocks that slimlib can slim: it looks "
            "for modules with .attn (timm Attention) and .mlp (timm Mlp/GluMlp/SwiGLU) children, "
            "as in timm VisionTransformer and the torchgeo RS foundation models."
        )
    return blocks


def _check_block(name: str, block: nn.Module, parts: Sequence[str]) -> None:
    problems = []
    if "attn" in parts and type(block.attn) not in (*_ATTN_TYPES, SlimAttention):
        problems.append(f"attention {_qualname(block.attn)}")
    if "attn" in parts and not hasattr(block.attn, "qkv"):
        problems.append("attention without a fused qkv projection")
    if "ffn" in parts and type(block.mlp) not in _FFN_TYPES:
        problems.append(f"FFN {_qualname(block.mlp)}")
    if problems:
        raise TypeError(
            f"slimlib.slim cannot slim block {name!r} ({_qualname(block)}): unsupported "
            f"{' and '.join(problems)}. Supported attention: timm.layers.Attention (fused qkv) "
            "and slimlib.SlimAttention; supported FFN: timm.layers.Mlp, GluMlp, SwiGLU. "
            "Pass parts=('ffn',) or parts=('attn',) to slim only the supported kind."
        )


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_parts(parts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(parts, str):
        parts = (parts,)
    parts = tuple(parts)
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {parts!r}")
    return parts


def slim(
    model: nn.Module,
    width: float,
    *,
    parts: Sequence[str] = PARTS,
    order: str = "first",
    seed: int | None = None,
    scale: str = "slimmed",
) -> nn.Module:
    """Return a physically narrower copy of ``model`` at width factor ``width``.

    Args:
        model: a ViT encoder built from timm blocks (left untouched).
        width: the paper's width factor s in (0, 1]; 1 returns an equivalent copy.
        parts: which sub-layers to slim: ``("attn", "ffn")`` (paper), ``("attn",)``
            or ``("ffn",)`` (layer-type ablation).
        order: which indices survive: ``"first"`` (paper), ``"last"`` or ``"random"``
            (dimension-order ablation; an independent sorted subset per head and per
            block, drawn from ``torch.Generator().manual_seed(seed)``).
        seed: seed for ``order="random"`` (default 0).
        scale: ``"slimmed"`` uses softmax scale 1/sqrt(d_k'), ``"original"`` keeps
            the model's own scale (1/sqrt(d_k) for timm).

    Returns:
        A new ``nn.Module`` in the same train/eval mode, with ``SlimAttention`` in place of
        each attention and sliced FFN layers.

    Raises:
        ValueError: width outside (0, 1], NaN or not a number; bad parts/order/scale.
        TypeError: a block type slimlib does not know (named in the message).
    """
    width = check_width(width)
    parts = _check_parts(parts)
    order = check_choice(order, ORDERS, "order")
    scale = check_choice(scale, SCALES, "scale")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None; got {seed!r}")
    blocks = find_blocks(model)
    for name, block in blocks:
        _check_block(name, block, parts)

    new = copy.deepcopy(model, memo=_skip_memo(blocks, parts))
    gen = torch.Generator().manual_seed(0 if seed is None else seed) if order == "random" else None
    for (_, source), (_, block) in zip(blocks, find_blocks(new), strict=True):
        if "attn" in parts:
            attn = source.attn
            d_k = int(attn.head_dim)
            kept = slimmed_dim(width, d_k)
            keep = _head_indices(int(attn.num_heads), d_k, kept, order, gen)
            softmax_scale = kept ** -0.5 if scale == "slimmed" else float(attn.scale)
            slimmed = SlimAttention(attn, keep, softmax_scale)
            slimmed.train(attn.training)
            block.attn = slimmed
        if "ffn" in parts:
            d_h = ffn_hidden(source.mlp)
            _slim_ffn(source.mlp, block.mlp, _indices(d_h, slimmed_dim(width, d_h), order, gen))
    return new


def describe(model: nn.Module) -> pd.DataFrame:
    """One row per transformer block: its name, residual width d, heads, d_k, d_h.

    Also reports the attention/FFN class names and the softmax scale in use.
    """
    rows = []
    for index, (name, block) in enumerate(find_blocks(model)):
        attn, mlp = block.attn, block.mlp
        d = int(attn.qkv.in_features) if hasattr(attn, "qkv") else math.nan
        rows.append({
            "block": index,
            "name": name,
            "d": d,
            "heads": int(getattr(attn, "num_heads", 0)),
            "d_k": int(getattr(attn, "head_dim", 0)),
            "d_h": ffn_hidden(mlp) if hasattr(mlp, "fc2") else math.nan,
            "scale": float(getattr(attn, "scale", math.nan)),
            "attention": type(attn).__name__,
            "ffn": type(mlp).__name__,
        })
    return pd.DataFrame(rows)
