"""Finding and describing the transformer blocks of a ViT.

:func:`find_blocks` is the one rule for what a block is (a module with ``.attn`` and ``.mlp``
children); :func:`ffn_hidden` reads an FFN's hidden width d_h; :func:`describe` tabulates
every block's widths, heads and softmax scale (what :func:`slimlib.slimming.slim` changes).
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from slimlib.slimming._attention import SlimAttention, attention_layout, own_scale

__all__ = ["find_blocks", "ffn_hidden", "describe", "slimmed_widths", "WIDTHS_ATTR",
           "slimmed_align", "ALIGN_ATTR"]


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


#: Attribute of a slimmed model holding its cumulative width per part (see :func:`slimmed_widths`).
WIDTHS_ATTR = "slimlib_widths"


def slimmed_widths(model: nn.Module) -> dict[str, float]:
    """The cumulative width factors ``{"attn": s_a, "ffn": s_f}`` ``model`` was slimmed to,
    relative to the model first handed to :func:`slim` (1.0 for a model never slimmed).

    ``slim`` records them on its result (``slim(slim(m, 0.5), 0.5)`` gives 0.25 for both).
    For a model holding :class:`SlimAttention` without that record (built by hand), the
    attention width is read from the kept head dimension (``d_k' / d_k``).
    """
    recorded = getattr(model, WIDTHS_ATTR, None)
    if isinstance(recorded, dict):
        return {p: float(recorded.get(p, 1.0)) for p in ("attn", "ffn")}
    found = [b.attn for _, b in find_blocks(model) if isinstance(b.attn, SlimAttention)]
    attn = found[0].head_dim / found[0].full_head_dim if found else 1.0
    return {"attn": float(attn), "ffn": 1.0}


#: Attribute of a slimmed model holding the ``align`` it was slimmed with (see
#: :func:`slimmed_align`).
ALIGN_ATTR = "slimlib_align"


def slimmed_align(model: nn.Module) -> int | None:
    """The ``align`` :func:`slim` rounded the kept dims up to (``None``: the paper's floor
    rule, or a model never slimmed). Re-slimming without ``align`` keeps the earlier record."""
    align = getattr(model, ALIGN_ATTR, None)
    return None if align is None else int(align)


def describe(model: nn.Module) -> pd.DataFrame:
    """One row per transformer block: its name, residual width d, heads, d_k, d_h, and the
    cumulative width factors ``attn_width`` / ``ffn_width`` the model was slimmed to
    (:func:`slimmed_widths`; 1.0 for a model never slimmed).

    Also reports the attention/FFN class names and the softmax scale in use. Attention slimlib
    cannot read (see :func:`attention_layout`) gets ``"unknown"`` for ``d``, ``heads``,
    ``d_k`` and ``scale``, never a made-up number. ``d_k`` and ``d_h`` are the dims the
    model really holds (with ``slim(..., align=a)`` they are rounded up to multiples of
    ``a``, so they can exceed ``floor(width * d)``); the frame's ``attrs["align"]`` holds
    :func:`slimmed_align`.
    """
    rows = []
    widths = slimmed_widths(model)
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
            "scale": own_scale(attn, layout.head_dim) if layout else "unknown",
            "attention": type(attn).__name__,
            "ffn": type(mlp).__name__,
            "attn_width": widths["attn"],
            "ffn_width": widths["ffn"],
        })
    frame = pd.DataFrame(rows)
    frame.attrs["align"] = slimmed_align(model)
    return frame
