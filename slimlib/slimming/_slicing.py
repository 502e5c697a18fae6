"""Cutting rows and columns out of layers: the one place slimlib copies sliced weights.

:func:`slice_linear` builds a narrower ``nn.Linear`` from chosen weight rows/columns and
:func:`slice_norm` a LayerNorm/RMSNorm over a slimmed feature axis. Both keep
``requires_grad`` and never modify the source; the attention
(:mod:`slimlib.slimming._attention`) and the FFN (:mod:`slimlib.slimming`) are sliced with them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["slice_linear", "slice_norm"]


def slice_linear(
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


def slice_norm(norm: nn.Module, keep: torch.Tensor) -> nn.Module:
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
