"""Schematic figures drawn from patches, not from data: Fig. 2-style
:func:`architecture_diagram` of post-hoc slimming of one ViT block."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

__all__ = ["architecture_diagram"]


def architecture_diagram(width: float = 0.25, *, d: int = 384, heads: int = 6, d_k: int = 64,
                         d_h: int = 1536) -> Figure:
    """Fig. 2-style schematic of post-hoc slimming of one ViT block, drawn with patches.

    Left: every attention head keeps the first ``max(1, floor(s * d_k))`` Q/K/V dims (kept
    dims filled, dropped dims hatched); right: the FFN keeps the first ``max(1, floor(s *
    d_h))`` hidden units. The residual stream (width ``d``) is never slimmed.
    """
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    kk = max(1, int(np.floor(width * d_k)))
    kh = max(1, int(np.floor(width * d_h)))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.axis("off")
    kept, dropped = "#3b7dd8", "#d9d9d9"
    # residual stream
    ax.add_patch(Rectangle((0.2, 0.3), 0.35, 3.4, color="#555555", label=f"residual d = {d}"))
    ax.text(0.37, 3.85, f"d={d}", ha="center", fontsize=8)
    # attention heads: Q, K, V columns per head
    x0, head_w = 1.0, 4.0 / heads
    for h in range(heads):
        for j, name in enumerate("QKV"):
            left = x0 + h * head_w + j * head_w / 3.3
            full_h = 2.6
            keep_h = full_h * kk / d_k
            ax.add_patch(Rectangle((left, 0.6), head_w / 3.8, full_h, facecolor=dropped,
                                   edgecolor="0.5", hatch="///", lw=0.5))
            ax.add_patch(Rectangle((left, 0.6 + full_h - keep_h), head_w / 3.8, keep_h,
                                   facecolor=kept, edgecolor="none"))
            if h == 0:
                ax.text(left + head_w / 7.6, 0.35, name, ha="center", fontsize=7)
    ax.text(x0 + 2.0, 3.45, f"attention: {heads} heads, d_k {d_k} → {kk}", ha="center",
            fontsize=9)
    # FFN hidden units
    fx = 5.8
    ax.add_patch(Rectangle((fx, 0.6), 3.6, 2.6, facecolor=dropped, edgecolor="0.5",
                           hatch="///", lw=0.5))
    ax.add_patch(Rectangle((fx, 0.6), 3.6 * kh / d_h, 2.6, facecolor=kept, edgecolor="none"))
    ax.text(fx + 1.8, 3.45, f"FFN: d_h {d_h} → {kh}", ha="center", fontsize=9)
    for xa, xb in ((0.55, x0 - 0.05), (x0 + 4.05, fx - 0.05)):
        ax.add_patch(FancyArrowPatch((xa, 1.9), (xb, 1.9), arrowstyle="->", mutation_scale=12))
    ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=kept, label="kept (first dims)"))
    ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=dropped, hatch="///", label="dropped"))
    ax.legend(loc="lower right", fontsize=7, ncol=3, frameon=False, bbox_to_anchor=(1.0, -0.08))
    ax.set_title(f"post-hoc slimming at s = {width}: softmax scale 1/√{kk}, residual width kept",
                 fontsize=10)
    return fig
