"""Compute accounting: FLOPs, relative compute and parameter counts.

FLOPs are forward FLOPs counted as 2 x multiply-accumulates of every matrix product and
convolution, **including the attention scores (Q K^T) and attention x V products**.
``torch.utils.flop_counter.FlopCounterMode`` counts these for the CUDA SDPA kernels but
registers no formula for the CPU kernel ``aten._scaled_dot_product_flash_attention_for_cpu``
(pytorch issue #195460), so on CPU it silently counts attention as zero. :func:`flops`
adds that formula (the same 4·B·H·N·M·d count torch uses for the other SDPA kernels), so the
count is the same on either attention path and on any device.

Element-wise work (softmax, GELU, LayerNorm, bias adds) is not counted, as is usual for
FLOP tables of transformers (timm, DeiT, fvcore). See ``docs/compute.md`` for how this
count compares with the paper's published relative compute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from slimlib._validation import check_widths
from slimlib.constants import WIDTHS

__all__ = ["WIDTHS", "flops", "relative_compute", "params", "compute_table",
           "time_forward", "time_alternated", "timed_rounds"]



def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of softmax(Q K^T) V for shapes (B, H, N, d) x (B, H, M, d) x (B, H, M, d_v)."""
    b, h, n, d = query_shape
    _, _, m, d_v = value_shape
    return 2 * b * h * n * m * d + 2 * b * h * n * m * d_v


def _no_flops(*args, **kwargs) -> int:
    return 0


_SDPA_OPS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
)


def _layer_norm_flops(input_shape, normalized_shape, weight_shape=None, *args, out_shape=None,
                      **kwargs) -> int:
    """fvcore's LayerNorm count (5 per element with affine, 4 without), in 2 x MAC units."""
    numel = 1
    for size in input_shape:
        numel *= size
    return 2 * numel * (5 if weight_shape is not None else 4)


def _custom_mapping(count_attention: bool, count_norms: bool = False) -> dict:
    mapping = {}
    if count_norms:
        mapping[torch.ops.aten.native_layer_norm] = _layer_norm_flops
    for name in _SDPA_OPS:
        op = getattr(torch.ops.aten, name, None)
        if op is None:
            continue
        if not count_attention:
            mapping[op] = _no_flops
        elif name.endswith("_for_cpu"):
            mapping[op] = _sdpa_cpu_flops
    return mapping


def flops(
    model: nn.Module,
    example_input: torch.Tensor | Sequence | dict,
    *,
    count_attention: bool = True,
    count_norms: bool = False,
) -> int:
    """Forward FLOPs (2 x MAC) of ``model`` on ``example_input``, attention included.

    Args:
        model: any ``nn.Module``; it is run once in eval mode under ``torch.no_grad``.
        example_input: a tensor (e.g. ``(1, C, H, W)``), a tuple of positional arguments
            or a dict of keyword arguments.
        count_attention: ``False`` leaves out the Q K^T and A V products of fused (SDPA)
            attention, which is what a FLOP counter blind to SDPA reports; it reproduces
            the paper's published relative compute closely (``docs/compute.md``).
        count_norms: also count LayerNorms as fvcore does (5 operations per element with an
            affine transform, as MACs). With ``count_attention=False`` this reproduces the
            paper's published relative compute of SSL4EO ViT-S/16 to within 1e-4.

    Returns:
        Total FLOPs for the whole batch (divide by the batch size for per-image FLOPs).
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping(count_attention, count_norms))
    try:
        with torch.no_grad(), counter:
            if isinstance(example_input, dict):
                model(**example_input)
            elif isinstance(example_input, list | tuple):
                model(*example_input)
            else:
                model(example_input)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def compute_table(
    model: nn.Module,
    widths: Iterable[float],
    example_input: torch.Tensor | Sequence | dict,
    *,
    parts: Sequence[str] = ("attn", "ffn"),
    order: str = "first",
    count_attention: bool = True,
    count_norms: bool = False,
) -> pd.DataFrame:
    """FLOPs, relative compute and parameters of ``slim(model, s)`` for every width.

    Returns a DataFrame with columns ``width, d_k, d_h, flops, rel_compute, params``
    (``d_k``/``d_h`` are those of the first block). Relative compute is
    FLOPs(s) / FLOPs(1) of the same model and input.
    """
    from slimlib.slimming import describe, slim

    widths = check_widths(widths)
    counting = {"count_attention": count_attention, "count_norms": count_norms}
    full = flops(model, example_input, **counting)
    rows = []
    for width in widths:
        small = slim(model, width, parts=parts, order=order)
        info = describe(small).iloc[0]
        count = full if width == 1.0 else flops(small, example_input, **counting)
        rows.append({"width": width, "d_k": int(info["d_k"]), "d_h": int(info["d_h"]),
                     "flops": count, "rel_compute": count / full, "params": params(small)})
    return pd.DataFrame(rows)


def relative_compute(
    model: nn.Module,
    widths: Iterable[float],
    example_input: torch.Tensor | Sequence | dict,
    *,
    parts: Sequence[str] = ("attn", "ffn"),
    order: str = "first",
    count_attention: bool = True,
    count_norms: bool = False,
) -> list[float]:
    """FLOPs(slim(model, s)) / FLOPs(model) for each width ``s`` (same order as ``widths``)."""
    table = compute_table(model, widths, example_input, parts=parts, order=order,
                          count_attention=count_attention, count_norms=count_norms)
    return table["rel_compute"].tolist()


# ------------------------------------------------------------------------- timing


def timed_rounds(calls: Mapping[Any, Callable[[], Any]], *, repeats: int, warmup: int = 1,
                 cuda: bool = False, progress: bool = False, desc: str = "timing"
                 ) -> dict[Any, list[float]]:
    """The one timing loop: wall seconds of every call, the calls alternated within each round
    (so load drift hits them alike).

    ``calls``: ``{label: zero-argument callable}``. ``warmup`` rounds run first and are not
    kept; then ``repeats`` rounds are timed, under ``torch.inference_mode``. ``cuda=True``
    brackets every call with ``torch.cuda.synchronize()``, so the time is the device's.
    Returns ``{label: [seconds per call, one per timed round]}``.
    """
    import time

    import torch
    from tqdm.auto import tqdm

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if not calls:
        raise ValueError("calls is empty: give {label: callable}")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times: dict[Any, list[float]] = {label: [] for label in calls}
    with torch.inference_mode():
        for _ in range(warmup):
            for call in calls.values():
                call()
        for _ in tqdm(range(repeats), desc=desc, unit="round", disable=not progress,
                      leave=False):
            for label, call in calls.items():
                sync()
                start = time.perf_counter()
                call()
                sync()
                times[label].append(time.perf_counter() - start)
    return times


def time_forward(model: Any, x: Any, *, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall time of ``model(x)`` under ``torch.inference_mode`` (``x``: ``(B, C, H, W)``).

    Returns ``{"ms": median ms per batch, "min_ms": fastest, "images_per_s": B / median}``.
    """
    import numpy as np

    model.eval()
    times = timed_rounds({"model": lambda: model(x)}, repeats=repeats, warmup=warmup,
                         cuda=bool(getattr(x, "is_cuda", False)))["model"]
    med = float(np.median(times))
    return {"ms": 1e3 * med, "min_ms": 1e3 * min(times), "images_per_s": x.shape[0] / med}


def time_alternated(runners: Any, x: Any, *, repeats: int = 5, warmup: int = 1) -> Any:
    """Time several runners of the same input in alternation (one call of each per round, so
    load drift hits them alike); ``runners``: ``{label: callable(x)}``, e.g. a PyTorch module
    and an ONNX Runtime session wrapper.

    Returns a DataFrame with one row per runner: ``runner``, ``ms`` (median per call),
    ``min_ms``, ``max_ms``, ``images_per_s`` (B / median) and ``vs_first`` (median per-round
    ratio of the first runner's time to this one's: > 1 means faster than the first).
    """
    import numpy as np
    import pandas as pd

    if not runners:
        raise ValueError("runners is empty: give {label: callable}")
    times = timed_rounds({label: (lambda run=run: run(x)) for label, run in runners.items()},
                         repeats=repeats, warmup=warmup,
                         cuda=bool(getattr(x, "is_cuda", False)))
    first = np.asarray(next(iter(times.values())))
    rows = []
    for label, ts in times.items():
        arr = np.asarray(ts)
        med = float(np.median(arr))
        rows.append({"runner": label, "ms": 1e3 * med, "min_ms": 1e3 * float(arr.min()),
                     "max_ms": 1e3 * float(arr.max()), "images_per_s": x.shape[0] / med,
                     "vs_first": float(np.median(first / arr))})
    return pd.DataFrame(rows)
