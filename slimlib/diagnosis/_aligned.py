"""Hardware-aligned widths in a diagnosis: is ``slim(model, s, align=a)`` the better choice?

At the recommended width s, :func:`aligned_check` builds the aligned model (kept FFN units and
per-head Q/K/V dims rounded **up** to a multiple of ``align``: :func:`slimlib.slim`'s
``align``), scores it with the same k-NN probe on the same images (cross-validated on the
training split like the recommendation, and on the test split paired with the full-width and
the unaligned model), and times it against the unaligned model in alternated rounds at the
diagnosis's throughput batch. The aligned model is **recommended** only when both hold:

* its CV retention on the training split reaches the target ``keep`` (the rule that chose s);
* it is faster: unaligned time / aligned time is above 1 in **every** alternated round (with
  the default 5 rounds, two models of equal speed pass this by chance about once in 32).

It keeps more dims than the paper's floor rule, so it does more FLOPs (its relative compute
is reported) and usually keeps at least as much of the score; matrix kernels run odd sizes
slowly, which is what it can win back.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["aligned_check", "DEFAULT_ALIGN"]

#: The multiple ``diagnose`` rounds kept dims up to (``align=None`` or 0 switches it off).
DEFAULT_ALIGN = 8


def _kept_dims(model: nn.Module) -> list[tuple[int, int]]:
    """Per block (per-head Q/K/V dims, FFN hidden units), as :func:`slimlib.describe` reads
    them."""
    from slimlib.slimming import describe

    table = describe(model)
    return [(int(k), int(h)) for k, h in zip(table["d_k"], table["d_h"], strict=True)]


def _dims_text(dims: list[tuple[int, int]]) -> str:
    """``d_k' 6, d_h' 153`` (or per block when the blocks differ)."""
    if len(set(dims)) == 1:
        return f"d_k' {dims[0][0]} per head, d_h' {dims[0][1]} FFN units"
    return "; ".join(f"block {i}: d_k' {k}, d_h' {h}" for i, (k, h) in enumerate(dims))


def aligned_check(enc: nn.Module, width: float, *, align: int, unaligned: nn.Module,
                  example: torch.Tensor, full_flops: int,
                  train: Any, test: Any, cv_retention_of: Callable[[np.ndarray], float],
                  keep: float, name: str, data_name: str, batch_size: int, device: torch.device,
                  latency: bool, latency_batch: int, latency_repeats: int, seed: int,
                  progress: bool, settings: Any) -> dict[str, Any]:
    """Whether the aligned model at ``width`` should be recommended instead of ``unaligned``.

    Args:
        enc: the full-width encoder (with ``.spec``).
        width: the recommended width s (< 1).
        align: the multiple kept dims are rounded up to.
        unaligned: ``slim(enc, width)`` (the recommendation as the paper's rule gives it).
        example, full_flops: one input ``(1, C, S, S)`` of ``enc`` and ``enc``'s FLOPs on it
            (the diagnosis has both: relative compute and the timing batch come from them).
        train, test: the diagnosis's datasets.
        cv_retention_of: training features -> their CV retention against the full-width
            model's (the rule that chose ``width``, same folds).
        keep, seed: the recommendation's target and the bootstrap's seed.
        name, data_name, batch_size, device, settings: feature extraction and cache keys (as
            the sweep's, so cached features are reused).
        latency, latency_batch, latency_repeats: time both models at ``latency_batch``.
        progress: progress bars.

    Returns:
        ``{"align", "width", "same_model", "kept", "kept_aligned", "rel_compute",
        "cv_retention", "test_retention" ({"value", "lo", "hi"}, paired with the full model),
        "minus_unaligned" (aligned − unaligned test score, paired), "speedup" ({"median",
        "min", "max"} of per-round unaligned / aligned time, or ``None``), "throughput_img_s",
        "unaligned_throughput_img_s", "batch", "recommended", "why"}``.
    """
    from slimlib import probes
    from slimlib.diagnosis._sensitivity import _Features
    from slimlib.measure import flops, timed_rounds
    from slimlib.slimming import slim
    from slimlib.sweeping.intervals import bootstrap, interval
    from slimlib.sweeping.outcomes import Outcomes

    aligned = slim(enc, width, align=align)
    kept, kept_aligned = _kept_dims(unaligned), _kept_dims(aligned)
    out: dict[str, Any] = {"align": align, "width": width, "same_model": kept == kept_aligned,
                           "kept": _dims_text(kept), "kept_aligned": _dims_text(kept_aligned),
                           "recommended": False, "speedup": None}
    if out["same_model"]:
        out["why"] = (f"at s = {width:g} every kept dim is already a multiple of {align}: the "
                      "aligned model is the recommended one")
        return out
    out["rel_compute"] = flops(aligned, example) / full_flops
    feats = _Features(enc, train, test, name=name, data_name=data_name, batch_size=batch_size,
                      device=device, cache=True, settings=settings)
    scored: dict[str, Outcomes] = {}
    aligned_train = None
    for label, module in (("full", slim(enc, 1.0)), ("unaligned", unaligned),
                          ("aligned", aligned)):
        tr_x, tr_y, te_x, te_y = feats(module, f"{label} @ width {width:g}")
        if label == "aligned":
            aligned_train = tr_x
        _, labels, preds = probes.score_outcomes("knn", tr_x, tr_y, te_x, te_y, seed=0)
        scored[label] = Outcomes(np.asarray(labels), np.asarray(preds))
    out["cv_retention"] = float(cv_retention_of(aligned_train))
    observed, draws = bootstrap({k: [o] for k, o in scored.items()}, seed=seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = draws["aligned"] / draws["full"]
    lo, hi = interval(ratio)
    full = observed["full"]
    out["test_retention"] = {"value": observed["aligned"] / full if full > 0 else float("nan"),
                             "lo": lo, "hi": hi}
    lo, hi = interval(draws["aligned"] - draws["unaligned"])
    out["minus_unaligned"] = {"value": observed["aligned"] - observed["unaligned"], "lo": lo,
                              "hi": hi}
    passes = out["cv_retention"] >= keep
    if not latency:
        out["why"] = "not timed (latency off): the aligned model is not recommended unseen"
        return out
    device = torch.device(device)
    x = example.to(device).expand(latency_batch, *example.shape[1:]).contiguous()
    models = {k: m.to(device) for k, m in (("unaligned", unaligned), ("aligned", aligned))}
    times = timed_rounds({k: (lambda m=m: m(x)) for k, m in models.items()},
                         repeats=latency_repeats, warmup=1, cuda=device.type == "cuda",
                         progress=progress, desc="timing the aligned width")
    per_round = [u / a for u, a in zip(times["unaligned"], times["aligned"], strict=True)]
    out["speedup"] = {"median": statistics.median(per_round), "min": min(per_round),
                      "max": max(per_round), "rounds": len(per_round)}
    out["batch"] = latency_batch
    out["throughput_img_s"] = latency_batch / statistics.median(times["aligned"])
    out["unaligned_throughput_img_s"] = latency_batch / statistics.median(times["unaligned"])
    faster = out["speedup"]["min"] > 1.0
    out["recommended"] = passes and faster
    if out["recommended"]:
        out["why"] = (f"its CV retention {out['cv_retention']:.2f} reaches the {keep:.0%} target "
                      f"and it ran faster than the unaligned model in every one of "
                      f"{len(per_round)} alternated rounds (median "
                      f"{out['speedup']['median']:.2f}×)")
    elif not passes:
        out["why"] = (f"its CV retention {out['cv_retention']:.2f} misses the {keep:.0%} target")
    else:
        out["why"] = (f"it was not faster in every alternated round here (min / median "
                      f"{out['speedup']['min']:.2f} / {out['speedup']['median']:.2f}× the "
                      "unaligned model's speed)")
    return out
