"""Switchable-width forward passes over ONE set of ViT weights (learned slimmable training).

``with width(model, s): y = model(x)`` runs every transformer block of ``model`` at width
factor ``s`` with exactly the semantics of :func:`slimlib.slimming.slim`:

* FFN (timm ``Mlp``): the first ``d_h' = max(1, floor(s*d_h))`` hidden units
  (``fc1.weight[:d_h']``, ``fc1.bias[:d_h']``, ``fc2.weight[:, :d_h']``, whole ``fc2.bias``);
* attention (timm ``Attention``): all heads, the first ``d_k'`` dims of each head's q, k
  and v (``qkv.weight.view(3, H, d_k, C)[:, :, :d_k']``), the matching input columns of
  ``proj`` (``proj.weight.view(C, H, d_k)[:, :, :d_k']``) and softmax scale ``1/sqrt(d_k')``;
* separate-projection attention (``q``/``k``/``v`` or ``query``/``key``/``value`` Linears and
  ``proj``/``out_proj``, as :func:`slimlib.slimming.attention_layout` reads it, e.g.
  Galileo's): the same rows of each of q, k and v (``q.weight.view(H, d_k, C)[:, :d_k']``).

All slices are *views* of the original parameters (prefix slicing never copies), so the
gradients of every width land in the same tensors. Embeddings, norms, LayerScale and the
residual width are untouched. Outside the context the model is a plain timm model again:
the patch is an instance-level ``forward`` that is removed on exit, so ``state_dict``,
``deepcopy`` and :func:`slimlib.slimming.slim` never see it.

:func:`sandwich_widths` draws the widths of one training step (US-Nets sandwich rule).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import MethodType

import torch
import torch.nn.functional as F
from timm.layers import Attention, Mlp
from torch import nn

from slimlib._validation import check_width, slimmed_dim
from slimlib.constants import PARTS
from slimlib.slimming import attention_layout

__all__ = ["width", "sandwich_widths", "switchable_blocks", "PARTS"]

_STATE = "_slimlib_width"


def switchable_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Transformer blocks of ``model`` (modules with ``.attn`` and ``.mlp`` children).

    This is the same rule :func:`slimlib.slimming.find_blocks` uses, so both slim the
    same modules.
    """
    blocks = [
        (name, module) for name, module in model.named_modules()
        if isinstance(getattr(module, "attn", None), nn.Module)
        and isinstance(getattr(module, "mlp", None), nn.Module)
    ]
    if not blocks:
        raise TypeError(f"{type(model).__name__} has no transformer blocks (modules with .attn "
                        "and .mlp children) to switch; pass the ViT encoder, not a head")
    return blocks


def _check_attention(name: str, attn: nn.Module) -> str:
    """``"fused"`` or ``"split"``; ``TypeError`` for attention the switchable forward lacks."""
    if type(attn) is not Attention:
        try:
            layout = attention_layout(attn)
        except TypeError as err:
            raise TypeError(f"block {name!r}: switchable width supports timm.layers.Attention "
                            f"and separate-projection attention, not "
                            f"{type(attn).__module__}.{type(attn).__qualname__} ({err})") from err
        if layout.kind != "split":
            raise TypeError(f"block {name!r}: switchable width does not run on an already "
                            "slimmed SlimAttention; use the full model")
        norms = [getattr(attn, n, None) for n in ("q_norm", "k_norm")]
        if any(n is not None and not isinstance(n, nn.Identity) for n in norms):
            raise TypeError(f"block {name!r}: switchable attention does not support qk_norm")
        return "split"
    extras = []
    if not (isinstance(attn.q_norm, nn.Identity) and isinstance(attn.k_norm, nn.Identity)):
        extras.append("qk_norm")
    if not isinstance(attn.norm, nn.Identity):
        extras.append("scale_norm")
    if getattr(attn, "gate", None) is not None:
        extras.append("gated")
    if attn.qkv.in_features != attn.proj.out_features:
        extras.append("dim_out != dim")
    if extras:
        raise TypeError(f"block {name!r}: switchable attention does not support "
                        f"{', '.join(extras)}; build the ViT without them")
    return "fused"


def _check_mlp(name: str, mlp: nn.Module) -> None:
    if type(mlp) is not Mlp or not isinstance(mlp.fc1, nn.Linear):
        raise TypeError(f"block {name!r}: switchable width supports timm.layers.Mlp with "
                        f"Linear layers, not {type(mlp).__module__}.{type(mlp).__qualname__}")
    if not isinstance(mlp.norm, nn.Identity):
        raise TypeError(f"block {name!r}: switchable Mlp does not support a hidden norm")


def _attention_forward(self: Attention, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                       is_causal: bool = False) -> torch.Tensor:
    """timm ``Attention`` at ``d_k' = self._slimlib_width`` dims per head. x: (B, N, C)."""
    d = getattr(self, _STATE)
    B, N, C = x.shape
    H, D = self.num_heads, self.head_dim
    w_qkv = self.qkv.weight.view(3, H, D, C)[:, :, :d]  # view: (3, H, d, C)
    qkv = torch.einsum("bnc,thdc->tbhnd", x, w_qkv)  # (3, B, H, N, d)
    if self.qkv.bias is not None:
        qkv = qkv + self.qkv.bias.view(3, 1, H, 1, D)[..., :d]
    q, k, v = qkv.unbind(0)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=d ** -0.5,
        dropout_p=self.attn_drop.p if self.training else 0.0,
    )  # (B, H, N, d)
    w_proj = self.proj.weight.view(self.proj.out_features, H, D)[:, :, :d]  # view: (C, H, d)
    out = torch.einsum("bhnd,chd->bnc", out, w_proj)
    if self.proj.bias is not None:
        out = out + self.proj.bias
    return self.proj_drop(out)


def _split_attention_forward(self: nn.Module, x: torch.Tensor,
                             attn_mask: torch.Tensor | None = None,
                             is_causal: bool = False) -> torch.Tensor:
    """Separate-projection attention at ``d_k' = self._slimlib_width``. x: (B, N, C)."""
    d = getattr(self, _STATE)
    layout = attention_layout(self)
    H, D = layout.num_heads, layout.head_dim
    B, N, C = x.shape
    heads = []
    for name in layout.qkv:
        lin = getattr(self, name)
        w = lin.weight.view(H, D, C)[:, :d]  # view: (H, d, C)
        out = torch.einsum("bnc,hdc->bhnd", x, w)
        if lin.bias is not None:
            out = out + lin.bias.view(1, H, 1, D)[..., :d]
        heads.append(out)
    q, k, v = heads
    drop = getattr(self, "attn_drop", getattr(self, "dropout", None))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=d ** -0.5,
        dropout_p=drop.p if self.training and isinstance(drop, nn.Dropout) else 0.0,
    )  # (B, H, N, d)
    proj = getattr(self, layout.out)
    w_proj = proj.weight.view(proj.out_features, H, D)[:, :, :d]  # view: (C_out, H, d)
    out = torch.einsum("bhnd,chd->bnc", out, w_proj)
    if proj.bias is not None:
        out = out + proj.bias
    proj_drop = getattr(self, "proj_drop", None)
    return proj_drop(out) if isinstance(proj_drop, nn.Module) else out


def _mlp_forward(self: Mlp, x: torch.Tensor) -> torch.Tensor:
    """timm ``Mlp`` keeping the first ``d_h' = self._slimlib_width`` hidden units."""
    d = getattr(self, _STATE)
    bias = self.fc1.bias[:d] if self.fc1.bias is not None else None
    h = self.drop1(self.act(F.linear(x, self.fc1.weight[:d], bias)))
    return self.drop2(F.linear(h, self.fc2.weight[:, :d], self.fc2.bias))


@contextlib.contextmanager
def width(model: nn.Module, s: float, *, parts: Sequence[str] = PARTS) -> Iterator[nn.Module]:
    """Run ``model`` at width factor ``s`` inside the ``with`` block (no copies).

    Args:
        model: a module holding timm ViT blocks (an encoder; heads are not touched).
        s: width factor in (0, 1]. ``1.0`` leaves timm's own forward in place.
        parts: ``("attn", "ffn")`` (paper), ``("attn",)`` or ``("ffn",)``.

    Yields:
        ``model`` itself. Nested contexts restore the outer width on exit.

    Raises:
        ValueError: ``s`` outside (0, 1] or bad ``parts``.
        TypeError: a block type the switchable forward does not support.
    """
    s = check_width(s)
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {parts!r}")
    targets: list[tuple[nn.Module, int, int, object]] = []
    for name, block in switchable_blocks(model):
        if "attn" in parts:
            kind = _check_attention(name, block.attn)
            d_k = attention_layout(block.attn).head_dim if kind == "split" \
                else int(block.attn.head_dim)
            targets.append((block.attn, slimmed_dim(s, d_k), d_k,
                            _split_attention_forward if kind == "split" else _attention_forward))
        if "ffn" in parts:
            _check_mlp(name, block.mlp)
            d_h = int(block.mlp.fc1.out_features)
            targets.append((block.mlp, slimmed_dim(s, d_h), d_h, _mlp_forward))
    saved = [(m, m.__dict__.get("forward"), m.__dict__.get(_STATE)) for m, _, _, _ in targets]
    try:
        for module, kept, full, fn in targets:
            if kept >= full:  # full width: the module's own forward
                module.__dict__.pop("forward", None)
                module.__dict__.pop(_STATE, None)
            else:
                module.__dict__[_STATE] = kept
                module.__dict__["forward"] = MethodType(fn, module)
        yield model
    finally:
        for module, forward, state in saved:
            for key, value in (("forward", forward), (_STATE, state)):
                if value is None:
                    module.__dict__.pop(key, None)
                else:
                    module.__dict__[key] = value


def sandwich_widths(n: int, min_width: float, max_width: float = 1.0,
                    generator: torch.Generator | None = None) -> list[float]:
    """Widths of one sandwich-rule step: ``[max_width, min_width, *random]``.

    The ``n - 2`` random widths are drawn uniformly from ``[min_width, max_width]``
    with ``generator`` (US-Nets, Yu & Huang 2019; the paper uses ``n = 5``).

    Raises:
        ValueError: ``n < 2``, widths outside (0, 1] or ``min_width > max_width``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (full and minimum width); got {n!r}")
    lo = check_width(min_width, "min_width")
    hi = check_width(max_width, "max_width")
    if lo > hi:
        raise ValueError(f"min_width ({lo}) must not exceed max_width ({hi})")
    draws = torch.rand(n - 2, generator=generator, dtype=torch.float64)
    return [hi, lo, *(lo + (hi - lo) * float(u) for u in draws)]
