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
SSL4EO ViTs are built from, Galileo's blocks) whose FFN is timm's ``Mlp``, ``GluMlp`` or
``SwiGLU`` and whose attention is either

* **fused**: timm's ``Attention`` (one ``qkv`` Linear), or
* **separate projections** (Galileo, Hugging Face-style ViTs): Linear layers named
  ``q``/``k``/``v`` (or ``query``/``key``/``value``, or ``q_proj``/``k_proj``/``v_proj``)
  and an output Linear ``proj`` (or ``out_proj``/``o_proj``), a ``num_heads`` (or
  ``num_attention_heads``) attribute, and no other submodules than optional q/k norms
  and dropouts. Its ``forward(x, attn_mask=None)`` is taken to be standard multi-head
  scaled-dot-product attention; modules with anything else (rotary or relative position
  terms, extra layers) are refused,

or an already slimmed :class:`SlimAttention`. Anything else raises ``TypeError``; blocks are
never skipped silently. The slimmed attention keeps the source's submodule names, so a slimmed
state dict has the same keys (plus the ``_extra_state`` that records the softmax scale).

What ``slim`` preserves: ``requires_grad`` of every parameter, train/eval mode, and the forward
(pre-)hooks registered on every module it replaces (the attention, its projections and norms,
the FFN's ``fc1``/``fc2``/``norm``): they are carried over to the new module and fire with the
slimmed shapes. Backward hooks on replaced modules are refused with a ``ValueError``.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from timm.layers import Attention, GluMlp, Mlp, SwiGLU
from torch import nn

from slimlib._validation import check_choice, check_width, slimmed_dim
from slimlib.constants import ORDERS, PARTS, SCALES

__all__ = ["SlimAttention", "slim", "describe", "find_blocks", "attention_layout",
           "AttentionLayout", "PARTS", "ORDERS", "SCALES"]

_ATTN_TYPES: tuple[type[nn.Module], ...] = (Attention,)
_FFN_TYPES: tuple[type[nn.Module], ...] = (Mlp, GluMlp, SwiGLU)


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
        raise TypeError(f"attention {_qualname(attn)} has a fused qkv but is not "
                        "timm.layers.Attention; slimlib cannot tell its head layout")
    layout = _split_layout(attn)
    if isinstance(layout, str):
        raise TypeError(f"attention {_qualname(attn)}: {layout}")
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
            self.qkv = _slice_linear(source.qkv, rows=qkv_rows)
        else:
            for name in layout.qkv:
                setattr(self, name, _slice_linear(getattr(source, name), rows=rows))
        q_norm = getattr(source, "q_norm", nn.Identity())
        k_norm = getattr(source, "k_norm", nn.Identity())
        if _same_sets(keep):
            self.q_norm, self.k_norm = _slice_norm(q_norm, keep[0]), _slice_norm(k_norm, keep[0])
        else:
            if not (isinstance(q_norm, nn.Identity) and isinstance(k_norm, nn.Identity)):
                raise ValueError("order='random' with per-head index sets is not supported "
                                 "for attention with qk-norm; use order='first' or 'last'")
            self.q_norm, self.k_norm = nn.Identity(), nn.Identity()
        self.attn_drop = _dropout(source, "attn_drop", "dropout")
        self.norm = _slice_norm(getattr(source, "norm", nn.Identity()), rows)
        gate = getattr(source, "gate", None)
        self.gate = _slice_linear(gate, rows=rows) if gate is not None else None
        setattr(self, layout.out, _slice_linear(getattr(source, layout.out), cols=rows))
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
            setattr(new, name, nn.Parameter(param.detach().index_select(0, keep.to(param.device)),
                                            requires_grad=param.requires_grad))
    return new


#: Hook dictionaries of ``nn.Module`` that ``slim`` carries from a replaced module to its copy.
_FORWARD_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                       "_forward_hooks", "_forward_hooks_with_kwargs",
                       "_forward_hooks_always_called")
_BACKWARD_HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks")


def _check_hooks(name: str, module: nn.Module) -> None:
    """Refuse backward hooks on a module ``slim`` replaces (their shapes would change)."""
    if any(getattr(module, attr, None) for attr in _BACKWARD_HOOK_DICTS):
        raise ValueError(
            f"slimlib.slim replaces {name!r} ({_qualname(module)}), which has backward hooks; "
            "they cannot be carried over to the slimmed module. Remove them before slimming "
            "and register them on the slimmed model.")


def _carry_hooks(old: nn.Module, new: nn.Module) -> None:
    """Give ``new`` the forward (pre-)hooks of ``old`` (same functions, same order)."""
    for attr in _FORWARD_HOOK_DICTS:
        hooks = getattr(old, attr, None)
        if hooks:
            setattr(new, attr, OrderedDict(hooks))


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


def _replaced_attention(attn: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention module and the children ``SlimAttention`` rebuilds (for hooks)."""
    return [("", attn), *((n, m) for n, m in attn.named_children())]


def _slim_ffn(source: nn.Module, target: nn.Module, keep: torch.Tensor) -> None:
    """Give ``target`` (the copy's FFN) the sliced layers of ``source`` (the original FFN)."""
    _ffn_layers(source, target, keep)
    for name in (*_FFN_LINEARS, "norm"):
        old, new = getattr(source, name, None), getattr(target, name, None)
        if isinstance(old, nn.Module) and isinstance(new, nn.Module):
            _carry_hooks(old, new)


def _ffn_layers(source: nn.Module, target: nn.Module, keep: torch.Tensor) -> None:
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
    if "attn" in parts:
        try:
            attention_layout(block.attn)
        except TypeError as err:
            problems.append(str(err))
        else:
            for sub, module in _replaced_attention(block.attn):
                _check_hooks(f"{name}.attn{'.' + sub if sub else ''}", module)
    if "ffn" in parts:
        if type(block.mlp) not in _FFN_TYPES:
            problems.append(f"FFN {_qualname(block.mlp)}")
        else:
            for sub in (*_FFN_LINEARS, "norm"):
                module = getattr(block.mlp, sub, None)
                if isinstance(module, nn.Module):
                    _check_hooks(f"{name}.mlp.{sub}", module)
    if problems:
        raise TypeError(
            f"slimlib.slim cannot slim block {name!r} ({_qualname(block)}): unsupported "
            f"{' and '.join(problems)}. Supported attention: timm.layers.Attention (fused qkv), "
            "separate-projection attention (q/k/v or query/key/value Linears, an output "
            "proj/out_proj Linear, num_heads) and slimlib.SlimAttention; supported FFN: "
            "timm.layers.Mlp, GluMlp, SwiGLU. Pass parts=('ffn',) or parts=('attn',) to slim "
            "only the supported kind."
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
            layout = attention_layout(attn)
            d_k = layout.head_dim
            kept = slimmed_dim(width, d_k)
            keep = _head_indices(layout.num_heads, d_k, kept, order, gen)
            softmax_scale = kept ** -0.5 if scale == "slimmed" else _own_scale(attn, d_k)
            slimmed = SlimAttention(attn, keep, softmax_scale)
            slimmed.train(attn.training)
            for sub, old in _replaced_attention(attn):
                target = getattr(slimmed, sub, None) if sub else slimmed
                if isinstance(target, nn.Module):
                    _carry_hooks(old, target)
            block.attn = slimmed
        if "ffn" in parts:
            d_h = ffn_hidden(source.mlp)
            _slim_ffn(source.mlp, block.mlp, _indices(d_h, slimmed_dim(width, d_h), order, gen))
    return new


def _own_scale(attn: nn.Module, d_k: int) -> float:
    """The softmax scale an attention module uses itself (``1/sqrt(d_k)`` unless it says)."""
    scale = getattr(attn, "scale", None)
    return float(scale) if isinstance(scale, int | float) and not isinstance(scale, bool) \
        else d_k ** -0.5


def describe(model: nn.Module) -> pd.DataFrame:
    """One row per transformer block: its name, residual width d, heads, d_k, d_h.

    Also reports the attention/FFN class names and the softmax scale in use. Attention slimlib
    cannot read (see :func:`attention_layout`) gets ``"unknown"`` for ``d``, ``heads``,
    ``d_k`` and ``scale``, never a made-up number.
    """
    rows = []
    for index, (name, block) in enumerate(find_blocks(model)):
        attn, mlp = block.attn, block.mlp
        try:
            layout = attention_layout(attn)
        except TypeError:
            layout = None
        rows.append({
            "block": index,
            "name": name,
            "d": layout.dim if layout else "unknown",
            "heads": layout.num_heads if layout else "unknown",
            "d_k": layout.head_dim if layout else "unknown",
            "d_h": ffn_hidden(mlp) if hasattr(mlp, "fc2") else "unknown",
            "scale": _own_scale(attn, layout.head_dim) if layout else "unknown",
            "attention": type(attn).__name__,
            "ffn": type(mlp).__name__,
        })
    return pd.DataFrame(rows)
