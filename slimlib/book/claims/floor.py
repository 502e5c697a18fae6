"""The embedding-floor result: the slimmed model at its smallest width against what its
unslimmed embedding alone gives (:func:`slimlib.sweeping.controls.embedding_only`) and against random
initialisation, with paired intervals (:mod:`slimlib.book.claims.runs`).

:func:`embedding_floor` is the table (chapter 1's findings and the claim "scores above its
floor" read it); :func:`rs_above_floor` is that claim's statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from slimlib.book.claims.runs import pooled_statistic, probe_rows, smallest_width_runs
from slimlib.book.claims.statistics import RS_SCOPE, Evidence, Stat, Use, _no_controls, _untestable
from slimlib.sweeping.controls import FLOOR_DEGENERATE, FLOOR_NOT_BEATEN, is_control, split_label

__all__ = ["embedding_floor", "rs_above_floor"]


def rs_above_floor(ev: Evidence) -> Stat:
    table = embedding_floor(ev)
    if table.empty:
        return _untestable("no embedding-only floor in this build")
    stat = table.attrs["above floor"]
    if stat is None:
        return _untestable("every embedding-only floor of this build is degenerate (constant "
                           "features over the test images)")
    table = table[~table["degenerate"]]
    return Stat(stat.value, stat.lo, stat.hi, stat.label,
                (Use(RS_SCOPE, tuple(table["model"].unique()),
                     tuple(table["dataset"].unique())),),
                "slimmed model at its smallest control width minus its embedding-only floor, "
                "mean over " + ", ".join(f"{r.model}@{r.dataset} {r.above_floor:+.3f}"
                                         for r in table.itertuples()))


def _floor_runs(ev: Evidence) -> list[tuple[dict, dict[str, pd.DataFrame]]]:
    """Per model × dataset at the smallest control width: small, full, floor and random-init
    rows (from the sweep rows when there, else from the comparison table's means)."""
    runs = []
    rows, floor = probe_rows(ev.control_rows), ev.floor
    if rows is not None and floor is not None and not floor.empty:
        rows = rows.reset_index(drop=True)
        floor = floor[floor["protocol"] == "knn"]
        base = rows["model"].map(lambda m: split_label(m)[0])
        ours = _no_controls(rows)
        for info, run in smallest_width_runs(ours):
            mine = (base == info["model"]) & (rows["dataset"] == info["dataset"])
            rnd = rows[mine & is_control(rows["model"])
                       & np.isclose(rows["width"].astype(float), info["width"])]
            fl = floor[(floor["model"] == info["model"]) & (floor["dataset"] == info["dataset"])]
            if not fl.empty:
                runs.append((info, {**run, "floor": fl, **({"random": rnd} if len(rnd) else {})}))
        return runs
    cmp = ev.controls
    if cmp is None or cmp.empty or "floor" not in cmp:
        return []
    from slimlib.sweeping.controls import at_smallest

    def one(v: float, n: float) -> pd.DataFrame:
        return pd.DataFrame({"value": [v], "n_test": [n]})

    for r in at_smallest(cmp[cmp["protocol"] == "knn"]).itertuples():
        runs.append(({"model": r.model, "dataset": r.dataset, "width": r.width,
                      "rel_compute": getattr(r, "rel_compute", math.nan)},
                     {"small": one(r.value, r.n_test), "full": one(r.full, r.n_test),
                      "floor": one(r.floor, r.n_test).assign(
                          degenerate=bool(getattr(r, "floor_degenerate", False))),
                      "random": one(r.random_mean, r.n_test)}))
    return runs


def _degenerate(run: Mapping[str, pd.DataFrame]) -> bool:
    floor = run["floor"]
    return bool("degenerate" in floor and floor["degenerate"].fillna(False).astype(bool).any())


def _gain(v: Mapping) -> object:
    return (v["small"] - v["floor"]) / (v["full"] - v["floor"])


def _above(v: Mapping) -> object:
    return v["small"] - v["floor"]


def embedding_floor(ev: Evidence) -> pd.DataFrame:
    """The embedding-floor result at the smallest control width, per model × dataset.

    Columns ``model, dataset, rel_compute, n_images, value, floor, random, full, degenerate,
    above_floor (+ _lo/_hi), above_random (+ _lo/_hi), gain_kept (+ _lo/_hi), note``;
    ``gain_kept = (value − floor) / (full − floor)``, the share of what the blocks add over the
    floor that the slimmed model keeps. It is NaN, with the reason in ``note``, where the
    floor's features are constant over the test images (``degenerate``: a floor at chance,
    measuring nothing the embedding carries) or the full model does not beat its floor.
    ``attrs["above floor"]`` and ``attrs["gain kept"]`` pool the runs with a meaningful floor
    (a :class:`slimlib.book.claims.runs.Pooled`, ``None`` when there is none).
    """
    runs = _floor_runs(ev)
    if not runs:
        return pd.DataFrame()
    out, usable, gainful = [], [], []
    for info, run in runs:
        row = {"model": info["model"], "dataset": info["dataset"],
               "rel_compute": info["rel_compute"], "degenerate": _degenerate(run), "note": ""}
        row.update({k: float(run[k]["value"].mean()) for k in ("small", "floor", "full")})
        if "random" in run:
            row["random"] = float(run["random"]["value"].mean())
        stats = [("above_floor", _above)]
        if "random" in run:
            stats.append(("above_random", lambda v: v["small"] - v["random"]))
        if row["degenerate"]:
            row["note"] = f"gain kept {FLOOR_DEGENERATE}"
        elif row["full"] <= row["floor"]:
            row["note"] = f"gain kept {FLOOR_NOT_BEATEN}"
        else:
            stats.append(("gain_kept", _gain))
            gainful.append(run)
        if not row["degenerate"]:
            usable.append(run)
        for name, stat in stats:
            est = pooled_statistic([run], stat)
            row.update({name: est.value, f"{name}_lo": est.lo, f"{name}_hi": est.hi,
                        "n_images": est.n_images})
        out.append(row)
    table = pd.DataFrame(out).rename(columns={"small": "value"})
    table.attrs["above floor"] = pooled_statistic(usable, _above) if usable else None
    table.attrs["gain kept"] = pooled_statistic(gainful, _gain) if gainful else None
    return table
