"""Stage 1 — slimming: a physically narrower copy of a ViT at one width factor ``s``.

:func:`slim` keeps, in every transformer block, the first ``max(1, ⌊s·d_h⌋)`` FFN units and,
in every head, the first ``max(1, ⌊s·d_k⌋)`` Q/K/V dims (softmax scale ``1/√d_k'``); with
``align=a`` both counts are rounded up to a multiple of ``a`` (capped at the full size);
:func:`describe` reads back what a (slimmed) model keeps. See ``docs/slimming.md``.

Private modules: ``_slim`` (the driver), ``_blocks`` (what a block is), ``_attention`` (how
an attention module is read and rebuilt) and ``_slicing`` (the one place weights are cut).
"""

from slimlib.constants import ORDERS, PARTS, SCALES
from slimlib.slimming._attention import (
    AttentionLayout,
    SlimAttention,
    attention_layout,
    own_scale,
    qualname,
)
from slimlib.slimming._blocks import (
    ALIGN_ATTR,
    WIDTHS_ATTR,
    describe,
    ffn_hidden,
    find_blocks,
    slimmed_align,
    slimmed_widths,
)
from slimlib.slimming._slicing import slice_linear, slice_norm
from slimlib.slimming._slim import kept_dim, slim

__all__ = ["slim", "describe", "SlimAttention", "AttentionLayout", "attention_layout",
           "own_scale", "qualname", "find_blocks", "ffn_hidden", "slimmed_widths", "WIDTHS_ATTR",
           "slimmed_align", "ALIGN_ATTR", "kept_dim",
           "slice_linear", "slice_norm", "PARTS", "ORDERS", "SCALES"]
