"""Post-hoc width slimming of ViT encoders (Hackel et al. 2026, Sec. 3): the ``slim`` driver.

One width factor ``s`` in (0, 1] is applied uniformly to every transformer block:

* **FFN**: keep ``d_h' = max(1, floor(s * d_h))`` hidden units (rows of ``fc1`` and its
  bias, columns of ``fc2``; the bias of ``fc2`` is kept whole).
* **Attention**: keep *all* heads; in each head keep ``d_k' = max(1, floor(s * d_k))``
  dimensions of Q, K and V (rows of the fused ``qkv`` weight and bias) and the matching
  input columns of the output projection. The softmax scale becomes ``1/sqrt(d_k')``
  (``scale="slimmed"``, the paper's choice) or stays ``1/sqrt(d_k)`` (``scale="original"``).

With ``align=a`` (off by default; a departure from the paper's floor rule) both kept counts
are rounded **up** to a multiple of ``a``, capped at the full size (ViT-S at s = 0.1,
``a = 8``: 153 -> 160 FFN units, 6 -> 8 dims per head).

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

This module owns :func:`slim` (checking a model, choosing the kept indices, copying it and
swapping in the narrower layers, carrying hooks). The pieces live next to it:
``_attention`` (``AttentionLayout``, ``attention_layout``, ``SlimAttention``), ``_blocks``
(``find_blocks``, ``ffn_hidden``, ``describe``) and ``_slicing`` (weight slicing); the
package :mod:`slimlib.slimming` exports their public names.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import torch
from timm.layers import GluMlp, Mlp, SwiGLU
from torch import nn

from slimlib._validation import check_choice, check_int, check_parts, check_width, slimmed_dim
from slimlib.constants import ORDERS, PARTS, SCALES
from slimlib.slimming._attention import (
    SlimAttention,
    attention_layout,
    own_scale,
    qualname,
)
from slimlib.slimming._blocks import (
    ALIGN_ATTR,
    WIDTHS_ATTR,
    ffn_hidden,
    find_blocks,
    slimmed_widths,
)
from slimlib.slimming._slicing import slice_linear, slice_norm

__all__ = ["slim", "kept_dim"]

_FFN_TYPES: tuple[type[nn.Module], ...] = (Mlp, GluMlp, SwiGLU)


#: Hook dictionaries of ``nn.Module`` that ``slim`` carries from a replaced module to its copy.
_FORWARD_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                       "_forward_hooks", "_forward_hooks_with_kwargs",
                       "_forward_hooks_always_called")
_BACKWARD_HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks")


def _check_hooks(name: str, module: nn.Module) -> None:
    """Refuse backward hooks on a module ``slim`` replaces (their shapes would change)."""
    if any(getattr(module, attr, None) for attr in _BACKWARD_HOOK_DICTS):
        raise ValueError(
            f"slimlib.slim replaces {name!r} ({qualname(module)}), which has backward hooks; "
            "they cannot be carried over to the slimmed module. Remove them before slimming "
            "and register them on the slimmed model.")


def _carry_hooks(old: nn.Module, new: nn.Module) -> None:
    """Give ``new`` the forward (pre-)hooks of ``old`` (same functions, same order)."""
    for attr in _FORWARD_HOOK_DICTS:
        hooks = getattr(old, attr, None)
        if hooks:
            setattr(new, attr, OrderedDict(hooks))


def kept_dim(width: float, full: int, align: int | None = None) -> int:
    """The kept size of a ``full``-wide axis at width factor ``width``: the paper's
    ``max(1, floor(s * full))`` (:func:`slimlib._validation.slimmed_dim`), rounded **up** to a
    multiple of ``align`` and capped at ``full`` when ``align`` is given."""
    kept = slimmed_dim(width, full)
    return kept if align is None else min(int(full), -(-kept // align) * align)


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
        target.fc1_g = slice_linear(source.fc1_g, rows=keep)
        target.fc1_x = slice_linear(source.fc1_x, rows=keep)
    elif isinstance(source, GluMlp):
        half = source.fc1.out_features // 2
        target.fc1 = slice_linear(source.fc1, rows=torch.cat([keep, keep + half]))
    else:
        target.fc1 = slice_linear(source.fc1, rows=keep)
    target.norm = slice_norm(source.norm, keep)
    target.fc2 = slice_linear(source.fc2, cols=keep)


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
            problems.append(f"FFN {qualname(block.mlp)}")
        else:
            for sub in (*_FFN_LINEARS, "norm"):
                module = getattr(block.mlp, sub, None)
                if isinstance(module, nn.Module):
                    _check_hooks(f"{name}.mlp.{sub}", module)
    if problems:
        raise TypeError(
            f"slimlib.slim cannot slim block {name!r} ({qualname(block)}): unsupported "
            f"{' and '.join(problems)}. Supported attention: timm.layers.Attention (fused qkv), "
            "separate-projection attention (q/k/v or query/key/value Linears, an output "
            "proj/out_proj Linear, num_heads) and slimlib.SlimAttention; supported FFN: "
            "timm.layers.Mlp, GluMlp, SwiGLU. Pass parts=('ffn',) or parts=('attn',) to slim "
            "only the supported kind."
        )


def slim(
    model: nn.Module,
    width: float,
    *,
    parts: Sequence[str] = PARTS,
    order: str = "first",
    seed: int | None = None,
    scale: str = "slimmed",
    align: int | None = None,
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
        align: ``None`` (default, the paper's rule ``max(1, floor(s * d))``) or a positive
            int: round the kept FFN units and the kept per-head Q/K/V dims **up** to a
            multiple of ``align``, never above the full size (hardware-aligned widths: matrix
            kernels run odd sizes slowly). A departure from the paper's floor rule: the model
            keeps more than ``floor(s * d)`` dims (``describe`` shows the real ones; the
            softmax scale with ``scale="slimmed"`` is ``1/sqrt`` of the kept d_k'). Recorded
            on the result (:func:`slimmed_align`) and in the export metadata.

    Returns:
        A new ``nn.Module`` in the same train/eval mode, with ``SlimAttention`` in place of
        each attention and sliced FFN layers. Its cumulative width per part (relative to the
        unslimmed model) is recorded (:func:`slimmed_widths`, the ``attn_width`` /
        ``ffn_width`` columns of :func:`describe`, the export metadata). Slimming an already
        slimmed model compounds (``slim(slim(m, 0.5), 0.5)`` is width 0.25 of ``m``, with
        ``d' = floor(0.5 * floor(0.5 * d))``) and warns.

    Raises:
        ValueError: width outside (0, 1], NaN or not a number; bad parts/order/scale;
            ``align`` not a positive int.
        TypeError: a block type slimlib does not know (named in the message).
    """
    width = check_width(width)
    parts = check_parts(parts)
    order = check_choice(order, ORDERS, "order")
    scale = check_choice(scale, SCALES, "scale")
    align = None if align is None else check_int(align, "align")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None; got {seed!r}")
    blocks = find_blocks(model)
    for name, block in blocks:
        _check_block(name, block, parts)
    prior = slimmed_widths(model)
    widths = {p: prior[p] * (width if p in parts else 1.0) for p in PARTS}
    if any(prior[p] < 1.0 for p in parts):
        warnings.warn(
            f"slimming a model already slimmed (attn width {prior['attn']:g}, ffn width "
            f"{prior['ffn']:g}) by {width:g}: the result has width "
            f"{', '.join(f'{p} {widths[p]:g}' for p in PARTS)} of the original (recorded: "
            "slimlib.slimming.slimmed_widths, describe()); slim the original model to get "
            "floor(s * d) dims exactly", UserWarning, stacklevel=2)

    new = copy.deepcopy(model, memo=_skip_memo(blocks, parts))
    gen = torch.Generator().manual_seed(0 if seed is None else seed) if order == "random" else None
    for (_, source), (_, block) in zip(blocks, find_blocks(new), strict=True):
        if "attn" in parts:
            attn = source.attn
            layout = attention_layout(attn)
            d_k = layout.head_dim
            kept = kept_dim(width, d_k, align)
            keep = _head_indices(layout.num_heads, d_k, kept, order, gen)
            softmax_scale = kept ** -0.5 if scale == "slimmed" else own_scale(attn, d_k)
            slimmed = SlimAttention(attn, keep, softmax_scale)
            slimmed.train(attn.training)
            for sub, old in _replaced_attention(attn):
                target = getattr(slimmed, sub, None) if sub else slimmed
                if isinstance(target, nn.Module):
                    _carry_hooks(old, target)
            block.attn = slimmed
        if "ffn" in parts:
            d_h = ffn_hidden(source.mlp)
            kept = kept_dim(width, d_h, align)
            _slim_ffn(source.mlp, block.mlp, _indices(d_h, kept, order, gen))
    setattr(new, WIDTHS_ATTR, widths)
    if align is not None:
        setattr(new, ALIGN_ATTR, align)
    return new
