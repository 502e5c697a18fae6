"""The attention side of slimming: how slimlib reads an attention module, and what it
rebuilds it as.

* :class:`AttentionLayout` / :func:`attention_layout`: the head layout of a supported
  attention module, either **fused** (timm's ``Attention``, one ``qkv`` Linear) or **separate
  projections** (``q``/``k``/``v``, ``query``/``key``/``value`` or ``q_proj``/``k_proj``/
  ``v_proj`` Linears, an output ``proj``/``out_proj``/``o_proj``, ``num_heads``); anything
  else raises ``TypeError`` saying what is missing.
* :class:`SlimAttention`: multi-head attention with an explicit per-head width d_k' and
  softmax scale, built from such a module and a set of kept per-head dimensions.

The driver that decides the widths and swaps the modules in is :func:`slimlib.slimming.slim`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn

from slimlib.slimming._slicing import slice_linear, slice_norm

__all__ = ["AttentionLayout", "attention_layout", "SlimAttention", "own_scale", "qualname"]

_ATTN_TYPES: tuple[type[nn.Module], ...] = (Attention,)
_SPLIT_NAMES = (("q", "k", "v"), ("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))
_OUT_NAMES = ("proj", "out_proj", "o_proj")
_NORM_NAMES = ("q_norm", "k_norm", "norm")
_DROP_NAMES = ("attn_drop", "proj_drop", "dropout")


@dataclass(frozen=True)
class AttentionLayout:
    """How slimlib reads an attention module.

    Attributes:
        kind: ``"fused"`` (one ``qkv`` Linear) or ``"split"`` (separate q/k/v Linears).
        qkv: submodule names of the input projections: ``("qkv",)`` or e.g. ``("q", "k", "v")``.
        out: submodule name of the output projection.
        num_heads, head_dim: heads and per-head width d_k.
        dim: input width of the projections.
    """

    kind: str
    qkv: tuple[str, ...]
    out: str
    num_heads: int
    head_dim: int
    dim: int


def _split_layout(attn: nn.Module) -> AttentionLayout | str:
    """The layout of a separate-projection attention, or why it is not one."""
    names = next((n for n in _SPLIT_NAMES if all(hasattr(attn, x) for x in n)), None)
    if names is None:
        return ("no fused qkv and no separate q/k/v projections (looked for "
                f"{', '.join('/'.join(n) for n in _SPLIT_NAMES)})")
    out = next((n for n in _OUT_NAMES if isinstance(getattr(attn, n, None), nn.Linear)), None)
    if out is None:
        return f"no output projection Linear (looked for {', '.join(_OUT_NAMES)})"
    layers = [getattr(attn, n) for n in names]
    if not all(type(layer) is nn.Linear for layer in layers):
        return f"{'/'.join(names)} are not all torch.nn.Linear"
    heads = getattr(attn, "num_heads", getattr(attn, "num_attention_heads", None))
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        return "no integer num_heads / num_attention_heads attribute"
    width = layers[0].out_features
    dims = {layer.in_features for layer in layers}
    if any(layer.out_features != width for layer in layers) or len(dims) != 1 \
            or width % heads or getattr(attn, out).in_features != width:
        return (f"inconsistent projection shapes ({', '.join(f'{n}: {tuple(x.weight.shape)}' for n, x in zip(names, layers, strict=True))}, "
                f"{out}: {tuple(getattr(attn, out).weight.shape)}, {heads} heads)")
    head_dim = int(getattr(attn, "head_dim", getattr(attn, "attention_head_size", width // heads)))
    if head_dim * heads != width:
        return f"head_dim {head_dim} x {heads} heads != projection width {width}"
    known = {*names, out, *_NORM_NAMES, *_DROP_NAMES}
    extra = [n for n, _ in attn.named_children() if n not in known]
    if extra:
        return f"submodules slimlib does not understand: {extra}"
    for n in ("q_norm", "k_norm"):
        norm = getattr(attn, n, None)
        if norm is not None and not isinstance(norm, nn.Identity | nn.LayerNorm | nn.RMSNorm):
            return f"{n} is {type(norm).__name__}, not Identity/LayerNorm/RMSNorm"
    if not isinstance(getattr(attn, "norm", nn.Identity()), nn.Identity):
        return "a norm after attention (scale_norm) on separate projections"
    for n in _DROP_NAMES:
        drop = getattr(attn, n, None)
        if drop is not None and not isinstance(drop, nn.Dropout | nn.Identity):
            return f"{n} is {type(drop).__name__}, not Dropout"
    return AttentionLayout("split", names, out, heads, head_dim, next(iter(dims)))


def attention_layout(attn: nn.Module) -> AttentionLayout:
    """Read ``attn`` as fused (timm ``Attention`` / :class:`SlimAttention`) or split attention.

    Raises:
        TypeError: the module is neither (the message says what is missing).
    """
    if isinstance(attn, SlimAttention):
        return AttentionLayout(attn.layout, attn.proj_names, attn.out_name, attn.num_heads,
                               attn.head_dim, attn.dim)
    if type(attn) in _ATTN_TYPES:
        return AttentionLayout("fused", ("qkv",), "proj", int(attn.num_heads),
                               int(attn.head_dim), int(attn.qkv.in_features))
    if hasattr(attn, "qkv"):
        raise TypeError(f"attention {qualname(attn)} has a fused qkv but is not "
                        "timm.layers.Attention; slimlib cannot tell its head layout")
    layout = _split_layout(attn)
    if isinstance(layout, str):
        raise TypeError(f"attention {qualname(attn)}: {layout}")
    return layout


def _dropout(source: nn.Module, *names: str) -> nn.Module:
    for name in names:
        drop = getattr(source, name, None)
        if isinstance(drop, nn.Dropout | nn.Identity):
            return copy.deepcopy(drop)
    return nn.Dropout(0.0)


class SlimAttention(nn.Module):
    """Multi-head self-attention with an explicit per-head width and softmax scale.

    Drop-in for timm's ``Attention`` and for separate-projection attention (same
    ``forward(x, attn_mask=None, is_causal=False)`` signature; the source's submodule names
    ``qkv`` or ``q``/``k``/``v`` and ``proj``/``out_proj`` are kept). Both the fused (SDPA) and
    the manual path use ``self.scale``, so slicing can never change the temperature silently.
    The scale is part of the state (``get_extra_state``): loading a state dict saved with a
    different scale raises ``ValueError`` instead of silently computing something else.

    Shapes: ``x`` (B, N, dim) -> (B, N, dim_out); each of q, k, v has ``num_heads * head_dim``
    features.
    """

    def __init__(self, source: nn.Module, keep: torch.Tensor, scale: float) -> None:
        """Build from a supported attention module keeping per-head dims ``keep``.

        Args:
            source: the module to slim (see :func:`attention_layout`); it is not modified.
            keep: sorted 1-D LongTensor of per-head indices in ``[0, source.head_dim)``, or a
                (num_heads, d') tensor with one index set per head.
            scale: softmax scale used on every attention path.
        """
        super().__init__()
        layout = attention_layout(source)
        heads, head_dim = layout.num_heads, layout.head_dim
        keep = keep if keep.ndim == 2 else keep.unsqueeze(0).expand(heads, -1)
        rows = (torch.arange(heads).unsqueeze(1) * head_dim + keep).reshape(-1)  # (H*d',)
        attn_dim = heads * head_dim

        self.layout = layout.kind
        self.proj_names = layout.qkv
        self.out_name = layout.out
        self.dim = layout.dim
        self.num_heads = heads
        self.head_dim = int(keep.shape[1])
        self.full_head_dim = int(getattr(source, "full_head_dim", head_dim))
        self.attn_dim = heads * self.head_dim
        self.scale = float(scale)
        self.fused_attn = bool(getattr(source, "fused_attn", True))
        if layout.kind == "fused":
            qkv_rows = torch.cat([rows + i * attn_dim for i in range(3)])
            self.qkv = slice_linear(source.qkv, rows=qkv_rows)
        else:
            for name in layout.qkv:
                setattr(self, name, slice_linear(getattr(source, name), rows=rows))
        q_norm = getattr(source, "q_norm", nn.Identity())
        k_norm = getattr(source, "k_norm", nn.Identity())
        if _same_sets(keep):
            self.q_norm, self.k_norm = slice_norm(q_norm, keep[0]), slice_norm(k_norm, keep[0])
        else:
            if not (isinstance(q_norm, nn.Identity) and isinstance(k_norm, nn.Identity)):
                raise ValueError("order='random' with per-head index sets is not supported "
                                 "for attention with qk-norm; use order='first' or 'last'")
            self.q_norm, self.k_norm = nn.Identity(), nn.Identity()
        self.attn_drop = _dropout(source, "attn_drop", "dropout")
        self.norm = slice_norm(getattr(source, "norm", nn.Identity()), rows)
        gate = getattr(source, "gate", None)
        self.gate = slice_linear(gate, rows=rows) if gate is not None else None
        setattr(self, layout.out, slice_linear(getattr(source, layout.out), cols=rows))
        self.proj_drop = _dropout(source, "proj_drop")

    def get_extra_state(self) -> torch.Tensor:
        """``[scale, head_dim, full_head_dim]`` (float64): saved with the state dict."""
        return torch.tensor([self.scale, self.head_dim, self.full_head_dim], dtype=torch.float64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        values = torch.as_tensor(state, dtype=torch.float64).reshape(-1).tolist()
        if len(values) != 3:
            raise ValueError(f"SlimAttention extra state must hold [scale, head_dim, "
                             f"full_head_dim]; got {values}")
        scale, head_dim, full = values
        if not math.isclose(scale, self.scale, rel_tol=1e-9) or int(head_dim) != self.head_dim \
                or int(full) != self.full_head_dim:
            raise ValueError(
                f"state dict was saved from a SlimAttention with softmax scale {scale:.6g} "
                f"(head_dim {int(head_dim)} of {int(full)}), but this one uses scale "
                f"{self.scale:.6g} (head_dim {self.head_dim} of {self.full_head_dim}). "
                "Re-slim with the same scale= (\"slimmed\" or \"original\") as the checkpoint.")

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, N, _ = x.shape
        if self.layout == "fused":
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            return tuple(qkv.unbind(0))
        return tuple(getattr(self, name)(x).view(B, N, self.num_heads, self.head_dim)
                     .transpose(1, 2) for name in self.proj_names)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self._project(x)
        q, k = self.q_norm(q), self.k_norm(k)
        drop = self.attn_drop.p if self.training and isinstance(self.attn_drop, nn.Dropout) \
            else 0.0
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
        return self.proj_drop(getattr(self, self.out_name)(x))

    def extra_repr(self) -> str:
        return (f"layout={self.layout}, num_heads={self.num_heads}, head_dim={self.head_dim} "
                f"(of {self.full_head_dim}), scale={self.scale:.5g}, fused_attn={self.fused_attn}")


def _same_sets(keep: torch.Tensor) -> bool:
    return bool((keep == keep[0]).all())


def qualname(obj: object) -> str:
    """``module.QualName`` of ``obj``'s class (how slimlib names a type in an error)."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def own_scale(attn: nn.Module, d_k: int) -> float:
    """The softmax scale an attention module uses itself (``1/sqrt(d_k)`` unless it says)."""
    scale = getattr(attn, "scale", None)
    return float(scale) if isinstance(scale, int | float) and not isinstance(scale, bool) \
        else d_k ** -0.5
