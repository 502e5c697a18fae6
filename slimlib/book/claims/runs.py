"""The runs behind a claim's statistic, and their intervals from what is random.

A *run* is one model × dataset: a mapping ``condition → rows`` (one row per probe seed), e.g.
``{"small": rows at the smallest width, "full": rows at s = 1}``. :func:`pooled_statistic`
turns runs and a statistic of their per-condition accuracies into a value and a 95 %
interval:

* when every row carries its per-image ``outcomes`` (:mod:`slimlib.sweeping.outcomes`) and
  all conditions of a run share the test images, the run's draws come from
  :func:`slimlib.sweeping.intervals.bootstrap` (paired over images, probe seeds resampled);
* otherwise (tables written before outcomes were stored) each condition is drawn on its own
  from a normal with its binomial SE, and the label says so ("binomial SE, unpaired");
* several runs are pooled with :func:`slimlib.sweeping.intervals.pool_draws` (a cluster bootstrap:
  runs are the clusters, so more widths or seeds never shrink it).

Rows are merged with :func:`slimlib.sweeping.intervals.merge_identical_widths` before any statistic
(:func:`smallest_width_runs`, :func:`width_runs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slimlib.sweeping.controls import binomial_se
from slimlib.sweeping.intervals import (
    N_BOOT,
    bootstrap,
    merge_identical_widths,
    pooled,
)
from slimlib.sweeping.outcomes import Outcomes, decode_all

__all__ = ["Run", "Pooled", "outcomes_of", "run_draws", "pooled_statistic",
           "smallest_width_runs", "width_runs", "probe_rows"]

#: One run: condition name → its rows (one per probe seed; random-init controls: one per init
#: seed and probe seed).
Run = Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class Pooled:
    """A pooled statistic: its value, 95 % interval, and what the interval is."""

    value: float
    lo: float
    hi: float
    n_runs: int
    n_images: int
    paired: bool

    @property
    def label(self) -> str:
        """What the interval is, in words (shown beside it)."""
        if self.paired:
            what = "bootstrap over test images and probe seeds, paired"
        else:
            what = "binomial SE of each accuracy, unpaired (no per-image outcomes stored)"
        runs = (f", clustered over {self.n_runs} model × dataset runs" if self.n_runs > 1
                else "")
        return f"{what}{runs}; {self.n_images} test images"


def probe_rows(rows: pd.DataFrame | None) -> pd.DataFrame | None:
    """The k-NN, first-order, slimmed rows of a sweep table (``None`` if there are none)."""
    if rows is None or rows.empty:
        return None
    out = rows[rows["protocol"] == "knn"]
    if "order" in out:
        out = out[out["order"].isin(["first"]) | out["order"].isna()]
    if "scale" in out:
        out = out[out["scale"].isin(["slimmed"]) | out["scale"].isna()]
    return out if not out.empty else None


def outcomes_of(rows: pd.DataFrame) -> list[Outcomes] | None:
    """The decoded outcomes of each row, or ``None`` when any row lacks them."""
    if "outcomes" not in rows:
        return None
    return decode_all(rows["outcomes"])


def run_draws(run: Run, *, n_boot: int = N_BOOT, seed: int = 0
              ) -> tuple[dict[str, float], dict[str, np.ndarray], int, bool]:
    """``(observed, draws, n_images, paired)`` of each condition's seed-mean accuracy."""
    outs = {k: outcomes_of(v) for k, v in run.items()}
    if all(o is not None for o in outs.values()):
        try:
            observed, draws = bootstrap(outs, n_boot=n_boot, seed=seed)
        except ValueError:      # other test images in one condition: cannot be paired
            pass
        else:
            return observed, draws, next(iter(outs.values()))[0].n, True
    rng = np.random.default_rng(seed)
    observed, draws, n_images = {}, {}, 0
    for name, rows in run.items():
        if rows.empty:
            raise ValueError(f"condition {name!r} has no rows")
        p, n = float(rows["value"].mean()), float(rows["n_test"].max())
        observed[name] = p
        draws[name] = rng.normal(p, float(binomial_se(p, n)), n_boot)
        n_images = max(n_images, int(n))
    return observed, draws, n_images, False


def pooled_statistic(runs: Sequence[Run], statistic: Callable[[Mapping], object], *,
                     n_boot: int = N_BOOT, seed: int = 0) -> Pooled:
    """Mean over runs of ``statistic(per-condition values)``, with its cluster-bootstrap
    interval (one run: that run's own bootstrap)."""
    if not runs:
        raise ValueError("no runs to compute the statistic on")
    paired: list[bool] = []

    def draws_of(run: Run, n: int, run_seed: int) -> tuple[Mapping, Mapping, int]:
        obs, draws, n_images, was_paired = run_draws(run, n_boot=n, seed=run_seed)
        paired.append(was_paired)
        return obs, draws, n_images

    est = pooled(runs, statistic, draws_of=draws_of, n_boot=n_boot, seed=seed)
    return Pooled(est.value, est.lo, est.hi, len(runs), est.n_images, all(paired))


def _run_keys(rows: pd.DataFrame) -> list[str]:
    return [k for k in ("model", "dataset", "parts") if k in rows]


def smallest_width_runs(rows: pd.DataFrame) -> list[tuple[dict, Run]]:
    """Per model × dataset: ``(info, {"small": rows at the smallest width, "full": rows at
    s = 1})`` after merging identical widths; ``info`` has ``model, dataset, width, widths,
    rel_compute`` (in the paper's FLOP convention when the rows carry ``rel_compute_paper``,
    as :func:`slimlib.book.claims.evidence.gather` adds, else this build's count)."""
    rows = merge_identical_widths(rows.reset_index(drop=True)
                                  .assign(width=rows["width"].astype(float).round(9).to_numpy()))
    out, keys = [], _run_keys(rows)
    for values, part in rows.groupby(keys, sort=True, dropna=False):
        key = dict(zip(keys, values, strict=True))
        full = part[np.isclose(part["width"], 1.0)]
        small_w = part["width"].min()
        small = part[np.isclose(part["width"], small_w)]
        if full.empty or np.isclose(small_w, 1.0):
            continue
        axis = next((c for c in ("rel_compute_paper", "rel_compute") if c in small), None)
        rel = float(small[axis].mean()) if axis else float("nan")
        widths = small["widths"].iloc[0] if "widths" in small else (small_w,)
        out.append(({**key, "width": float(small_w), "widths": widths, "rel_compute": rel},
                    {"small": small, "full": full}))
    return out


def width_runs(rows: pd.DataFrame, *, by: str = "model") -> dict[float, dict[str, pd.DataFrame]]:
    """Rows after merging identical widths, grouped as ``{width: {value of by: rows}}``."""
    rows = merge_identical_widths(rows.reset_index(drop=True)
                                  .assign(width=rows["width"].astype(float).round(9).to_numpy()))
    out: dict[float, dict[str, pd.DataFrame]] = {}
    for (width, name), part in rows.groupby(["width", by], sort=True):
        out.setdefault(float(width), {})[str(name)] = part
    return out
