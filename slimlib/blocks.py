"""Finding and describing the transformer blocks of a ViT.

:func:`find_blocks` is the one rule for what a block is (a module with ``.attn`` and ``.mlp``
children); :func:`ffn_hidden` reads an FFN's hidden width d_h; :func:`describe` tabulates
every block's widths, heads and softmax scale (what :func:`slimlib.slimming.slim` changes).
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from slimlib.slim_attention import attention_layout, own_scale

__all__ = ["find_blocks", "ffn_hidden", "describe"]


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
            "scale": own_scale(attn, layout.head_dim) if layout else "unknown",
            "attention": type(attn).__name__,
            "ffn": type(mlp).__name__,
        })
    return pd.DataFrame(rows)
