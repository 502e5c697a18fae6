"""Robustness analyses of the camera-ready (chapter 10): class imbalance, class-wise scores,
implicit dimension order, and the verdict rule every robustness comparison uses.

Everything here works on **frozen features** extracted once per width
(:func:`width_features`), so one extraction serves many subsamples, splits and seeds:

* :func:`imbalanced_indices`: the paper's exponential class imbalance. Class ``c`` of ``K``
  keeps ``round(n_c * ratio ** (c / (K - 1)))`` of its ``n_c`` training samples (at least one):
  class 0 keeps all, class ``K - 1`` keeps the fraction ``ratio``; a seed draws which ones.
* :func:`knn_class_scores`, :func:`average_precision`, :func:`classwise_scores`: per-class
  recall of the k-NN prediction and one-vs-rest average precision of the k-NN class scores.
* :func:`random_order_features`: features of ``slim(..., order="random", seed=d)`` for ``d``
  draws (the implicit-order check).
* the rules every robustness verdict follows (docs/robustness.md, "Verdicts"):
  :func:`paper_at_width` reads the paper's statistic at **the same width** as this build's;
  :func:`at_chance` is the **one chance-level rule** for class-wise AP, applied to the paper's
  classes and to ours alike; :func:`paired_bootstrap` gives intervals of several statistics on
  the same resampled test images (so pretrained minus random-init is paired);
  :func:`control_reading` says whether the random-init network shows the same effect; and
  :func:`judge` applies the book's one verdict policy (:mod:`slimlib.book.claims.rules`) with
  the paper's range over its models as the criterion (:data:`~slimlib.book.claims.rules.MEETS`:
  this build's point must lie in that range, so an effect of the other sign cannot hold).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from slimlib.book.claims import rules as er
from slimlib.probes import macro_accuracy  # re-exported: chapter 10 calls rb.macro_accuracy

__all__ = [
    "HOLDS", "FAILS", "NOT_TESTABLE", "verdict", "judge", "paper_at_width", "at_chance",
    "CHANCE_AP_FACTOR", "CHANCE_AP_MIN", "paired_bootstrap", "control_reading",
    "SAME_AS_RANDOM", "imbalance_counts",
    "imbalanced_indices", "knn_class_scores", "average_precision", "classwise_scores",
    "width_features", "random_order_features", "relative_compute_of", "imbalance_predictions",
    "paper_rebuttal", "macro_accuracy", "bootstrap",
]

#: The book's one verdict vocabulary (:mod:`slimlib.book.claims.rules`).
HOLDS, FAILS, NOT_TESTABLE = er.HOLDS, er.FAILS, er.NOT_TESTABLE

#: A class is at chance level when its full-width AP is at most this multiple of its
#: prevalence (the AP of a constant score) ...
CHANCE_AP_FACTOR = 1.5
#: ... or below this AP (the prevalence of a class of a balanced 10-class set; the only bound
#: that can be checked where the prevalence is not published, as for the paper's classes).
CHANCE_AP_MIN = 0.10
#: What a verdict's reason says when the random-init network shows the same effect.
SAME_AS_RANDOM = ("the random-init network of the same architecture shows the same effect "
                  "(their paired difference is within its interval): the effect is not about "
                  "what pretraining learned")


# ------------------------------------------------------------------------------- verdicts
def verdict(value: float, lo: float, hi: float, paper_lo: float, paper_hi: float, *,
            max_width: float | None = 0.2) -> str:
    """The verdict of one comparison with the paper's models, by the book's one policy
    (:func:`slimlib.book.claims.rules.decide`, mode ``MEETS``): *holds* when this build's point
    ``value`` lies in the paper's range ``[paper_lo, paper_hi]`` (and its interval
    ``[lo, hi]`` is no wider than ``max_width``), *does not hold* when the interval misses
    the range, else *not testable here*. Scope (model kind, data) is :func:`judge`'s."""
    paper_lo, paper_hi = min(paper_lo, paper_hi), max(paper_lo, paper_hi)
    criterion = er.Criterion(paper_lo, paper_hi, mode=er.MEETS, max_width=max_width)
    return er.decide(value, lo, hi, criterion)[0]


def judge(value: float, lo: float, hi: float, paper: tuple[float, float], *, models: Any,
          datasets: Any, pretrained: bool, kind: str = er.RS_FM, max_width: float | None = 0.2,
          mode: str = er.MEETS, untestable: str | None = None, detail: str = "") -> er.Ruling:
    """A robustness comparison judged by the book's one policy
    (:func:`slimlib.book.claims.rules.judge`): the claim is about ``kind`` (the paper's RS
    foundation models by default) on remote-sensing data; the criterion is ``paper``: the
    paper's range over its models at the same width, read in mode ``MEETS`` (default), or a
    bound the paper states, read in mode ``WITHIN`` (the whole interval must lie in it)."""
    p_lo, p_hi = min(paper), max(paper)
    if mode == er.MEETS:
        text = f"the paper's range {p_lo:+.3f} … {p_hi:+.3f}"
    elif math.isinf(p_lo):
        text = f"the paper's bound ≤ {p_hi:+.3f}"
    else:
        text = f"the paper's bound {p_lo:+.3f} … {p_hi:+.3f}"
    criterion = er.Criterion(p_lo, p_hi, mode=mode, max_width=max_width, text=text)
    return er.judge(value, lo, hi, criterion, scope=er.Scope(kind, er.RS_DATA),
                    models=[models] if isinstance(models, str) else list(models),
                    datasets=[datasets] if isinstance(datasets, str) else list(datasets),
                    pretrained=pretrained, untestable=untestable, detail=detail)


def paper_at_width(values: pd.DataFrame, width: float) -> pd.Series | None:
    """The column of ``values`` (a pivot with the paper's widths ``s`` as columns) at
    ``width``; ``None`` when the paper did not report that width (then the comparison is not
    like with like and must not be made)."""
    cols = [c for c in values.columns if math.isclose(float(c), float(width), rel_tol=1e-9)]
    return values[cols[0]] if cols else None


def at_chance(ap_full: float, prevalence: float | None = None) -> bool:
    """The one chance-level rule for a class's AP retention, for the paper's classes and ours:
    a class whose full-width AP is below :data:`CHANCE_AP_MIN`, or at most
    :data:`CHANCE_AP_FACTOR` × its prevalence where the prevalence is known, is at chance
    level, and a retention ``AP(s) / AP(1)`` of it means nothing."""
    if not math.isfinite(ap_full) or ap_full < CHANCE_AP_MIN:
        return True
    return prevalence is not None and ap_full <= CHANCE_AP_FACTOR * float(prevalence)


def paired_bootstrap(statistic: Any, n: int, *, n_boot: int = 200, seed: int = 0,
                     level: float = 0.95) -> list[tuple[float, float, float]]:
    """``[(value, lo, hi), ...]`` for each component of ``statistic(idx) -> (k,)`` values,
    every component computed on the **same** resampled test items (so differences between
    components, e.g. pretrained minus random-init, are paired). Components with too few
    finite draws get a NaN interval."""
    rng = np.random.default_rng(int(seed))
    value = np.asarray(statistic(np.arange(n)), dtype=float)
    draws = np.array([np.asarray(statistic(rng.integers(0, n, n)), dtype=float)
                      for _ in range(int(n_boot))])
    a = (1 - level) / 2
    out = []
    for j in range(value.size):
        col = draws[:, j][np.isfinite(draws[:, j])]
        if col.size < max(10, n_boot // 2):
            out.append((float(value[j]), math.nan, math.nan))
        else:
            out.append((float(value[j]), float(np.quantile(col, a)),
                        float(np.quantile(col, 1 - a))))
    return out


def control_reading(control: tuple[float, float, float],
                    difference: tuple[float, float, float]) -> tuple[str, bool]:
    """What the random-init control says about an effect: ``(text, same)``.

    ``control``: the control's effect ``(value, lo, hi)``; ``difference``: pretrained minus
    control, paired ``(value, lo, hi)``. ``same`` is True when the difference's interval
    contains 0 (the random network shows an effect that cannot be told from this one)."""
    value, lo, hi = control
    d, d_lo, d_hi = difference
    text = f"{value:+.3f} [{lo:+.3f}, {hi:+.3f}]; pretrained − random init {d:+.3f} " \
        f"[{d_lo:+.3f}, {d_hi:+.3f}]"
    same = bool(math.isfinite(d_lo) and math.isfinite(d_hi) and d_lo <= 0 <= d_hi)
    return text, same


def bootstrap(statistic: Any, n: int, *, n_boot: int = 200, seed: int = 0,
              level: float = 0.95) -> tuple[float, float, float]:
    """``(value, lo, hi)``: ``statistic(idx)`` on all ``n`` test items and the percentile
    interval of ``statistic`` over ``n_boot`` resamples (with replacement) of the test
    items. ``statistic`` maps an index array ``(n,)`` to a float. The one-component case of
    :func:`paired_bootstrap` (same resamples, same rules)."""
    return paired_bootstrap(lambda idx: [statistic(idx)], n, n_boot=n_boot, seed=seed,
                            level=level)[0]


# ------------------------------------------------------------------------------- imbalance
def imbalance_counts(n_per_class: Sequence[int], ratio: float) -> np.ndarray:
    """Samples each class keeps under exponential imbalance ``ratio`` in (0, 1].

    ``n_per_class`` ``(K,)``: available samples per class (classes in label order). Class ``c``
    keeps ``max(1, round(n_c * ratio ** (c / (K - 1))))``.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise ValueError(f"imbalance ratio must be a number in (0, 1]; got {ratio!r}")
    n = np.asarray(n_per_class, dtype=int)
    if n.ndim != 1 or n.size < 2 or (n < 1).any():
        raise ValueError(f"n_per_class must list >= 2 positive counts; got {n_per_class!r}")
    k = n.size
    factors = float(ratio) ** (np.arange(k) / (k - 1))
    return np.maximum(1, np.round(n * factors)).astype(int)


def imbalanced_indices(labels: Any, ratio: float, *, seed: int) -> np.ndarray:
    """Sorted indices of an exponentially imbalanced subsample of ``labels`` ``(N,)``.

    Classes are ordered by label value (0 keeps all its samples); ``seed`` picks which
    samples of each class are kept.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError("imbalanced_indices needs single-label labels (N,)")
    classes = np.unique(y)
    counts = imbalance_counts([int((y == c).sum()) for c in classes], ratio)
    rng = np.random.default_rng(int(seed))
    keep = [rng.choice(np.flatnonzero(y == c), size=int(m), replace=False)
            for c, m in zip(classes, counts, strict=True)]
    return np.sort(np.concatenate(keep))


# ------------------------------------------------------------------------------- class-wise
def knn_class_scores(train_x: Any, train_y: Any, test_x: Any, *, k: int = 5,
                     n_classes: int | None = None) -> np.ndarray:
    """k-NN class scores ``(M, K)``: the fraction of the ``k`` nearest training samples
    (cosine) of each class, plus 1e-3 × their summed similarity to break ties.

    ``train_x`` ``(N, D)``, ``train_y`` ``(N,)`` int labels in ``0..K-1``, ``test_x`` ``(M, D)``.
    """
    tr = F.normalize(torch.as_tensor(np.asarray(train_x), dtype=torch.float64), dim=1)
    te = F.normalize(torch.as_tensor(np.asarray(test_x), dtype=torch.float64), dim=1)
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.int64)
    k = min(int(k), tr.shape[0])
    n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    sims, idx = torch.topk(te @ tr.T, k, dim=1)
    codes = y[idx]
    scores = torch.zeros(te.shape[0], n_classes, dtype=torch.float64)
    scores.scatter_add_(1, codes, torch.full_like(sims, 1.0 / k))
    scores.scatter_add_(1, codes, 1e-3 * sims)
    return scores.numpy()


def average_precision(y_true: Any, scores: Any) -> float:
    """One-vs-rest average precision (sklearn's step-wise definition, ties grouped).

    ``y_true`` ``(M,)`` 0/1, ``scores`` ``(M,)``; NaN when there is no positive sample.
    """
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(scores, dtype=float)
    if y.sum() == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # end of each tied group
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def classwise_scores(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                     classes: Sequence[str], k: int = 5) -> pd.DataFrame:
    """Per-class recall of the k-NN prediction and one-vs-rest AP of its class scores.

    Returns one row per class: ``class, n_test, recall, ap``.
    """
    scores = knn_class_scores(train_x, train_y, test_x, k=k, n_classes=len(classes))
    pred = scores.argmax(axis=1)
    y = np.asarray(test_y)
    rows = []
    for c, name in enumerate(classes):
        member = y == c
        rows.append({"class": name, "n_test": int(member.sum()),
                     "recall": float((pred[member] == c).mean()) if member.any() else math.nan,
                     "ap": average_precision(member, scores[:, c])})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- features
def _extract(model: nn.Module, data: Any, *, name: str, split: str, width: float,
             batch_size: int, device: Any, settings: Any = None) -> np.ndarray:
    """Features of ``model`` on one split through the feature cache, under the key a sweep
    of the same model and data uses (so chapters 2-9's sweeps are cache hits here)."""
    from slimlib import features

    dev = features.resolve_device(device)
    key = features.feature_key(
        model=name, weights=features.module_fingerprint(model),
        dataset=getattr(data, "display_name", getattr(data, "name", "data")), split=split,
        data=features.data_fingerprint(data),
        preprocessing=features.preprocessing_id(getattr(model, "spec", None)),
        precision=features.precision(dev))
    x, _ = features.extract(model, data, batch_size=batch_size, device=dev, progress=False,
                            name=name, width=width, cache_key=key, settings=settings)
    return x


def width_features(model: nn.Module, datasets: Mapping[str, Any], widths: Iterable[float], *,
                   name: str, batch_size: int = 256, device: Any = None, settings: Any = None
                   ) -> dict[float, dict[str, np.ndarray]]:
    """Frozen features of ``slim(model, s)`` (first-dimension order) for every width.

    ``datasets``: ``{split name: ImageDataset}`` (prepared with ``model.spec``). Returns
    ``{width: {split name: features (N, D)}}``; extractions go through the feature cache.
    """
    from slimlib.slimming import slim

    out: dict[float, dict[str, np.ndarray]] = {}
    for w in sorted({float(w) for w in widths}):
        slimmed = slim(model, w)
        out[w] = {split: _extract(slimmed, data, name=name, split=split, width=w,
                                  batch_size=batch_size, device=device, settings=settings)
                  for split, data in datasets.items()}
    return out


def random_order_features(model: nn.Module, datasets: Mapping[str, Any], width: float,
                          draws: Iterable[int], *, name: str, batch_size: int = 256,
                          device: Any = None, settings: Any = None
                          ) -> dict[int, dict[str, np.ndarray]]:
    """Features of ``slim(model, width, order="random", seed=d)`` per draw ``d``:
    ``{d: {split name: (N, D)}}``."""
    from slimlib.slimming import slim

    out: dict[int, dict[str, np.ndarray]] = {}
    for d in draws:
        slimmed = slim(model, float(width), order="random", seed=int(d))
        out[int(d)] = {split: _extract(slimmed, data, name=name, split=split, width=width,
                                       batch_size=batch_size, device=device, settings=settings)
                       for split, data in datasets.items()}
    return out


def relative_compute_of(model: nn.Module, widths: Iterable[float], example: torch.Tensor
                        ) -> dict[float, float]:
    """``{width: FLOPs(slim(model, s)) / FLOPs(model)}`` on ``example`` ``(1, C, S, S)``
    (slimlib's default count, the one the sweeps use)."""
    from slimlib.measure import relative_compute

    widths = sorted({float(w) for w in widths})
    with torch.no_grad():
        return dict(zip(widths, relative_compute(model, widths, example), strict=True))


def imbalance_predictions(feats: Mapping[float, Mapping[str, np.ndarray]], train_y: Any, *,
                          ratios: Iterable[float], seeds: Iterable[int], k: int = 5
                          ) -> dict[tuple[float, int, float], np.ndarray]:
    """k-NN test predictions per ``(ratio, seed, width)``, each seed's training bank
    subsampled by :func:`imbalanced_indices` (the test split is unchanged).

    ``feats``: :func:`width_features` output with splits ``"train"`` and ``"test"``.
    Returns ``{(ratio, seed, width): predicted labels (M,)}``.
    """
    from slimlib.probes import knn_predict

    tr_y = np.asarray(train_y)
    out = {}
    for ratio in ratios:
        for seed in seeds:
            keep = imbalanced_indices(tr_y, float(ratio), seed=int(seed))
            for w, split in feats.items():
                out[(float(ratio), int(seed), float(w))] = knn_predict(
                    split["train"][keep], tr_y[keep], split["test"], k=k)
    return out


# ------------------------------------------------------------------------------- paper values
def paper_rebuttal(section: str) -> pd.DataFrame:
    """The paper's rebuttal values of ``section`` (``"geo"``, ``"imbalance"``, ``"classwise"``,
    ``"finetune"``) from the packaged reference data, with numeric ``x``, ``y`` and ``s``."""
    from slimlib.book import reference

    ref = reference.load()
    out = ref[ref["section"] == f"rebuttal.{section}"].copy()
    if out.empty:
        raise ValueError(f"no rebuttal section {section!r} in the reference data")
    out["x"] = pd.to_numeric(out["x"], errors="coerce")
    out["y"] = pd.to_numeric(out["y"], errors="coerce")
    if "s" in out:
        out["s"] = pd.to_numeric(out["s"], errors="coerce")
    return out.reset_index(drop=True)
