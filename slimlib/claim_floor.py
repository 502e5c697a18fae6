"""The embedding-floor result: the slimmed model at its smallest width against what its
unslimmed embedding alone gives (:func:`slimlib.controls.embedding_only`) and against random
initialisation, with paired intervals (:mod:`slimlib.claim_runs`).

:func:`embedding_floor` is the table (chapter 1's findings and the claim "scores above its
floor" read it); :func:`rs_above_floor` is that claim's statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from slimlib.claim_runs import pooled_statistic, probe_rows, smallest_width_runs
from slimlib.claim_statistics import RS_SCOPE, Evidence, Stat, Use, _no_controls, _untestable
from slimlib.controls import is_control, split_label

__all__ = ["embedding_floor", "rs_above_floor"]


def rs_above_floor(ev: Evidence) -> Stat:
    table = embedding_floor(ev)
    if table.empty:
        return _untestable("no embedding-only floor in this build")
    stat = table.attrs["above floor"]
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
    from slimlib.controls import at_smallest

    def one(v: float, n: float) -> pd.DataFrame:
        return pd.DataFrame({"value": [v], "n_test": [n]})

    for r in at_smallest(cmp[cmp["protocol"] == "knn"]).itertuples():
        runs.append(({"model": r.model, "dataset": r.dataset, "width": r.width,
                      "rel_compute": getattr(r, "rel_compute", math.nan)},
                     {"small": one(r.value, r.n_test), "full": one(r.full, r.n_test),
                      "floor": one(r.floor, r.n_test), "random": one(r.random_mean, r.n_test)}))
    return runs


def embedding_floor(ev: Evidence) -> pd.DataFrame:
    """The embedding-floor result at the smallest control width, per model × dataset.

    Columns ``model, dataset, rel_compute, n_images, value, floor, random, full, above_floor
    (+ lo/hi), above_random (+ lo/hi), gain_kept (+ lo/hi)``; ``gain_kept = (value − floor) /
    (full − floor)``, the share of what the blocks add over the floor that the slimmed model
    keeps. ``attrs["above floor"]`` is the pooled difference over runs (a
    :class:`slimlib.claim_runs.Pooled`), ``attrs["gain kept"]`` the pooled share.
    """
    runs = _floor_runs(ev)
    if not runs:
        return pd.DataFrame()

    def gain(v: Mapping) -> object:
        return (v["small"] - v["floor"]) / (v["full"] - v["floor"])

    out = []
    for info, run in runs:
        row = {"model": info["model"], "dataset": info["dataset"],
               "rel_compute": info["rel_compute"]}
        for name, stat in (("above_floor", lambda v: v["small"] - v["floor"]),
                           ("above_random", lambda v: v["small"] - v["random"]),
                           ("gain_kept", gain)):
            if name == "above_random" and "random" not in run:
                continue
            est = pooled_statistic([run], stat)
            row.update({name: est.value, f"{name}_lo": est.lo, f"{name}_hi": est.hi})
            row["n_images"] = est.n_images
        row.update({k: float(run[k]["value"].mean()) for k in ("small", "floor", "full")})
        if "random" in run:
            row["random"] = float(run["random"]["value"].mean())
        out.append(row)
    table = pd.DataFrame(out).rename(columns={"small": "value"})
    table.attrs["above floor"] = pooled_statistic([r for _, r in runs],
                                                  lambda v: v["small"] - v["floor"])
    table.attrs["gain kept"] = pooled_statistic([r for _, r in runs], gain)
    return table
