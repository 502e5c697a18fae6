"""The tables the book's figures draw, computed without drawing anything.

:func:`compute_bins` / :func:`bin_stats` are the paper's Fig. 1 bins (10 % of compute) and
their mean ± 2 SD; :func:`per_run_retention` divides each run by its own width-1 value (how
Fig. 1 pools runs); :func:`first_row_retention` is the authors' own convention (each row over
the *first* width-1 row of its curve, as the generator of their project page does);
:func:`paper_fig_parts` splits the published Fig. 1 rows into bin means
and bands; :func:`check_columns` is the one column check every figure helper uses. The
drawing is :mod:`slimlib.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["check_columns", "compute_bins", "bin_stats", "per_run_retention",
           "first_row_retention", "paper_fig_parts"]


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the columns of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing} "
                         f"(have {list(frame.columns)})")


def compute_bins(rel_compute: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    """The paper's Fig. 1 bins: ``floor(10 * rel_compute) / 10`` (so 1.0 is its own bin).

    A tiny tolerance keeps values such as 0.3 (stored as 0.29999...) in their decimal bin.
    """
    x = np.asarray(rel_compute, dtype=float)
    if np.any(~np.isfinite(x)) or np.any(x < 0):
        raise ValueError("rel_compute must be finite and >= 0")
    return np.floor(10 * x + 1e-9) / 10


def bin_stats(frame: pd.DataFrame, x: str = "rel_compute", y: str = "retention",
              by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, SD (ddof = 1), mean ± 2 SD and count of ``y`` per 10 % compute bin (Fig. 1a).

    Returns columns ``*by, bin, mean, sd, lo, hi, n`` (``sd`` is 0 for a single value).
    """
    check_columns(frame, [x, y, *by], "bin_stats")
    data = frame[[*by, x, y]].dropna().copy()
    data["bin"] = compute_bins(data[x])
    grouped = data.groupby([*by, "bin"])[y]
    out = grouped.agg(mean="mean", sd="std", n="size").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    out["lo"] = out["mean"] - 2 * out["sd"]
    out["hi"] = out["mean"] + 2 * out["sd"]
    return out[[*by, "bin", "mean", "sd", "lo", "hi", "n"]]


def per_run_retention(table: pd.DataFrame) -> pd.DataFrame:
    """Retention of every run row: ``value / value(width 1)`` of the same model, dataset,
    protocol, metric, seed and slimming settings (how the paper's Fig. 1 pools runs).

    Returns the probe rows of ``table`` with a ``retention`` column.
    """
    check_columns(table, ["model", "dataset", "protocol", "seed", "width", "value"],
                   "per_run_retention")
    rows = table[table["protocol"] != "features"].copy()
    keys = [c for c in ("model", "dataset", "protocol", "metric", "seed", "parts", "order",
                        "scale", "train_fraction") if c in rows.columns]
    full = rows[np.isclose(rows["width"].astype(float), 1.0)].groupby(keys)["value"].mean()
    if full.empty:
        raise ValueError("no width-1 rows: retention needs metric(1)")
    rows = rows.join(full.rename("full"), on=keys)
    rows["retention"] = rows["value"] / rows["full"]
    return rows.dropna(subset=["retention"])


def first_row_retention(table: pd.DataFrame) -> pd.DataFrame:
    """Retention in the authors' convention: every row over the **first** width-1 row (in
    table order) of its curve, seeds pooled (model, dataset, protocol, metric and slimming
    settings; the seed is not a key). The generator of the paper's project page does this, so
    its full-width bin is not 1 ± 0 when the seeds differ; bin the result with
    :func:`bin_stats` (mean ± 2 SD over rows).

    Returns the probe rows of ``table`` with ``full`` (that first row's value) and
    ``retention``.
    """
    check_columns(table, ["model", "dataset", "protocol", "width", "value"],
                  "first_row_retention")
    rows = table[table["protocol"] != "features"].copy()
    keys = [c for c in ("model", "dataset", "protocol", "metric", "parts", "order", "scale",
                        "train_fraction") if c in rows.columns]
    first = rows[np.isclose(rows["width"].astype(float), 1.0)].groupby(
        keys, sort=False, dropna=False)["value"].first()
    if first.empty:
        raise ValueError("no width-1 rows: retention needs metric(1)")
    rows = rows.join(first.rename("full"), on=keys)
    rows["retention"] = rows["value"] / rows["full"]
    return rows.dropna(subset=["retention"])


def paper_fig_parts(paper: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Split published fig1 rows (``reference.load()`` rows of one fig1 section) into the bin
    means (``series, x, y``) and ``series -> (x, lo, hi)`` bands."""
    if "stat" not in paper.columns:  # raw CSV rows: read the stat from ``extra``
        from slimlib.reference import _parse_extra

        check_columns(paper, ["series", "x", "y", "extra"], "paper_fig_parts")
        paper = paper.assign(stat=paper["extra"].map(lambda e: _parse_extra(e).get("stat")))
    check_columns(paper, ["series", "x", "y", "stat"], "paper_fig_parts")
    rows = paper[paper["x"].notna()].copy()
    rows["x"] = rows["x"].astype(float)
    rows["y"] = rows["y"].astype(float)
    rows["series"] = rows["series"].str.replace(r" band$", "", regex=True)
    mean = rows[rows["stat"] == "bin_mean"]
    bands: dict[str, pd.DataFrame] = {}
    for name, part in rows[rows["stat"].isin(["bin_mean_minus_2sd", "bin_mean_plus_2sd"])
                           ].groupby("series"):
        lo = part[part["stat"] == "bin_mean_minus_2sd"].groupby("x")["y"].mean()
        hi = part[part["stat"] == "bin_mean_plus_2sd"].groupby("x")["y"].mean()
        both = pd.concat([lo.rename("lo"), hi.rename("hi")], axis=1).dropna().reset_index()
        bands[str(name)] = both
    return mean, bands
