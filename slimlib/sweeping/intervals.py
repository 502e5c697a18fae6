"""Intervals from what is random: the test images and the probe's draws.

* :func:`merge_identical_widths` — before any statistic, widths that give an identical slimmed
  model (identical kept dims, deterministic order) are one point.
* :func:`bootstrap` — draws of each condition's macro accuracy on the **same** resampled test
  images (a stratified bootstrap over images: each class keeps its size), averaged over the
  probe seeds, which are resampled too. Conditions measured on the same images (a model and
  its floor, a slimmed and the full model, regular and slimmable) are therefore *paired*:
  a difference or a ratio of their draws is a paired interval.
* :func:`pooled` — a cluster bootstrap for statistics pooled over several model × dataset
  runs: resample the runs, and within each the images. Adding widths or seeds to a run does
  not add clusters, so it cannot shrink a pooled interval.
* :func:`interval` — the percentile interval of draws.

Outcomes (true and predicted class of every test image) come from a sweep row's ``outcomes``
cell (:mod:`slimlib.sweeping.outcomes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from slimlib.sweeping.outcomes import Outcomes

__all__ = ["Estimate", "bootstrap", "pooled", "pool_draws", "interval", "estimate",
           "merge_identical_widths", "N_BOOT", "LEVEL"]

#: Bootstrap draws used by the book (enough for a stable 95 % percentile interval).
N_BOOT = 2000
#: Coverage of every interval the book shows.
LEVEL = 0.95

#: Columns that, with the kept dims, identify one slimmed model of one run.
_MODEL_KEYS = ("model", "dataset", "protocol", "metric", "seed", "parts", "order", "scale",
               "train_fraction", "model_fp", "data_fp", "synthetic")


@dataclass(frozen=True)
class Estimate:
    """A point value with its percentile interval and what it rests on."""

    value: float
    lo: float
    hi: float
    n_images: int
    n_runs: int = 1

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def excludes(self, x: float) -> bool:
        """Whether ``x`` lies outside the interval."""
        return bool(x < self.lo or x > self.hi)

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


def _check_same_images(groups: Mapping[str, Sequence[Outcomes]]) -> np.ndarray:
    labels = None
    for name, seeds in groups.items():
        if not seeds:
            raise ValueError(f"condition {name!r} has no outcomes")
        for out in seeds:
            if labels is None:
                labels = out.labels
            elif out.labels.shape != labels.shape or not np.array_equal(out.labels, labels):
                raise ValueError(f"condition {name!r} was measured on other test images than the "
                                 "first condition; only outcomes of the same images can be paired")
    assert labels is not None
    return labels


def _macro(correct: np.ndarray, labels: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """Macro accuracy of ``correct`` (seeds × images) on the images ``index`` (draws × images,
    per class blocks) → (draws, seeds); ``index=None``: the observed images → (1, seeds)."""
    classes = np.unique(labels)
    per_class = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        sub = correct[:, members].astype(np.float64)            # seeds × n_c
        if index is None:
            per_class.append(sub.mean(axis=1)[None, :])
        else:
            picks = index[c]                                     # draws × n_c positions
            per_class.append(sub[:, picks].mean(axis=2).T)       # draws × seeds
    return np.mean(per_class, axis=0)


def bootstrap(groups: Mapping[str, Sequence[Outcomes]], *, n_boot: int = N_BOOT, seed: int = 0
              ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Observed values and paired bootstrap draws of each condition's seed-mean macro accuracy.

    Args:
        groups: condition name → outcomes of each probe seed, all on the same test images.
        n_boot: number of draws.
        seed: seed of the resampling.

    Returns:
        ``(observed, draws)``: per condition the macro accuracy averaged over seeds, and an
        array of ``n_boot`` draws in which every condition sees the same resampled images.
    """
    labels = _check_same_images(groups)
    rng = np.random.default_rng(seed)
    index = {}
    for c in np.unique(labels):
        n_c = int((labels == c).sum())
        index[c] = rng.integers(0, n_c, size=(n_boot, n_c))
    observed, draws = {}, {}
    for name, seeds in groups.items():
        correct = np.stack([o.correct for o in seeds])
        observed[name] = float(_macro(correct, labels, None).mean())
        per_seed = _macro(correct, labels, index)                # draws × seeds
        if per_seed.shape[1] > 1:
            pick = rng.integers(0, per_seed.shape[1], size=per_seed.shape)
            per_seed = np.take_along_axis(per_seed, pick, axis=1)
        draws[name] = per_seed.mean(axis=1)
    return observed, draws


def interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of ``draws`` (NaN draws, e.g. a ratio over zero, are dropped)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return float(lo), float(hi)


def estimate(value: float, draws: np.ndarray, *, n_images: int, n_runs: int = 1,
             level: float = LEVEL) -> Estimate:
    """An :class:`Estimate` from an observed value and its draws."""
    lo, hi = interval(draws, level)
    return Estimate(float(value), lo, hi, int(n_images), int(n_runs))


Statistic = Callable[[Mapping[str, np.ndarray | float]], np.ndarray | float]


def _outcome_draws(groups: Mapping[str, Sequence[Outcomes]], n_boot: int, seed: int
                   ) -> tuple[Mapping, Mapping, int]:
    obs, draws = bootstrap(groups, n_boot=n_boot, seed=seed)
    return obs, draws, next(iter(groups.values()))[0].n


def pooled(runs: Sequence[Any], statistic: Statistic, *, draws_of: Callable | None = None,
           n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Estimate:
    """Mean of a per-run statistic over runs, with a cluster-bootstrap interval.

    ``statistic`` maps one run's per-condition values (floats for the observed value, arrays
    of draws otherwise) to its value(s), e.g. ``lambda v: v["small"] / v["full"]``. Each
    draw resamples the runs with replacement and, inside each, the images (paired across that
    run's conditions); the pooled value is the mean over the resampled runs.

    A run is ``{condition: [Outcomes per probe seed]}`` (resampled by :func:`bootstrap`);
    ``draws_of(run, n_boot, seed) -> (observed values, draws, n_images)`` replaces that for
    runs of another form (the claims' table rows: :mod:`slimlib.book.claims.runs`). Run ``i``
    is drawn with seed ``seed + 1 + i``, the pooling with ``seed``.
    """
    if not runs:
        raise ValueError("no runs to pool")
    draws_of = _outcome_draws if draws_of is None else draws_of
    observed, per_run, n_images = [], [], 0
    for i, run in enumerate(runs):
        obs, draws, n = draws_of(run, n_boot, seed + 1 + i)
        observed.append(float(statistic(obs)))
        per_run.append(np.asarray(statistic(draws), dtype=np.float64))
        n_images += n
    value, draws = pool_draws(observed, per_run, rng=np.random.default_rng(seed))
    return estimate(value, draws, n_images=n_images, n_runs=len(runs), level=level)


def pool_draws(observed: Sequence[float], per_run: Sequence[np.ndarray], *,
               rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """The cluster bootstrap behind :func:`pooled`: the mean of the runs' observed values, and
    draws of that mean in which each draw resamples the runs (clusters) with replacement and
    takes each resampled run's own draw of the same index. ``per_run``: one array of draws
    per run, all of one length."""
    per_run_arr = np.stack([np.asarray(d, dtype=np.float64) for d in per_run])  # runs × draws
    n_runs, n_boot = per_run_arr.shape
    pick = rng.integers(0, n_runs, size=(n_boot, n_runs))                      # draws × runs
    draws = np.nanmean(per_run_arr[pick, np.arange(n_boot)[:, None]], axis=1)
    return float(np.mean(observed)), draws


def merge_identical_widths(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct slimmed model: widths with identical kept dims are one point.

    Within a model × dataset × protocol × seed × parts × order run, rows whose ``d_k`` and
    ``d_h`` are equal describe the same slimmed network (for the deterministic orders
    ``first``/``last``; ``random`` order rows are left as they are). The row of the smallest
    such width is kept, ``n_widths`` says how many widths it stands for and ``widths`` lists
    them. Rows without kept dims (``d_k`` missing) are kept unchanged.
    """
    if rows.empty or "d_k" not in rows or "d_h" not in rows:
        return rows.assign(n_widths=1, widths=rows.get("width", pd.Series(dtype=float))
                           .map(lambda w: (w,)) if not rows.empty else [])
    keys = [k for k in _MODEL_KEYS if k in rows] + ["d_k", "d_h"]
    mergeable = rows["order"].isin(["first", "last"]) if "order" in rows else \
        pd.Series(True, index=rows.index)
    mergeable &= rows["d_k"].notna() & rows["d_h"].notna()
    fixed = rows[~mergeable].assign(n_widths=1, widths=rows.loc[~mergeable, "width"]
                                    .map(lambda w: (w,)))
    merge = rows[mergeable].sort_values("width", kind="stable")
    key_frame = merge[keys].astype(str)
    group_id = key_frame.apply(tuple, axis=1)
    kept = merge.groupby(group_id, sort=False, dropna=False).head(1).copy()
    widths = merge.groupby(group_id, sort=False)["width"].agg(tuple)
    kept["widths"] = group_id.loc[kept.index].map(widths)
    kept["n_widths"] = kept["widths"].map(len)
    out = pd.concat([kept, fixed]).sort_index()
    return out
