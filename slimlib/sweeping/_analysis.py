"""Sweep analysis: :func:`retention`, the paper's metric(s) / metric(1) on seed means."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["retention"]


_GROUP_COLS = ("model", "model_fp", "dataset", "data_fp", "synthetic", "protocol", "metric",
               "parts", "order", "scale", "train_fraction")


def retention(table: pd.DataFrame, *, include_features: bool = False) -> pd.DataFrame:
    """Retention metric(s) / metric(1) on seed means, per model, dataset, protocol and setting.

    Args:
        table: a sweep table (needs ``model, dataset, protocol, width, value``; ``metric``,
            ``parts``, ``order``, ``scale``, fingerprints, ``rel_compute`` are used if present).
        include_features: also include ``protocol="features"`` rows (off by default: a ratio
            of, e.g., EVR slopes is not a retention).

    Returns:
        One row per group and width: the group columns, ``width``, ``rel_compute`` (if in
        ``table``), ``mean``, ``std`` (over seeds, ddof=1; NaN for one seed), ``n_seeds``,
        ``full`` (seed mean at width 1) and ``retention = mean / full``.

    Raises:
        ValueError: missing columns, or a group without a width-1 row.
    """
    needed = {"model", "dataset", "protocol", "width", "value"}
    if not needed <= set(table.columns):
        raise ValueError(f"table lacks columns {sorted(needed - set(table.columns))}; pass the "
                         "output of slimlib.sweep(...)")
    df = table if include_features else table[table["protocol"] != "features"]
    if df.empty:
        raise ValueError("table holds no probe rows to compute retention from")
    group = [c for c in _GROUP_COLS if c in df.columns]
    df = df.assign(width=df["width"].astype(float).round(9))
    agg = {"mean": ("value", "mean"), "std": ("value", "std"), "n_seeds": ("value", "count")}
    if "rel_compute" in df.columns:
        agg["rel_compute"] = ("rel_compute", "mean")
    stats = df.groupby(group + ["width"], dropna=False, sort=True).agg(**agg).reset_index()
    full = stats[np.isclose(stats["width"], 1.0)].set_index(group)["mean"].rename("full")
    stats = stats.join(full, on=group)
    lacking = stats[stats["full"].isna() & ~stats.set_index(group).index.isin(full.index)]
    if not lacking.empty:
        first = lacking.iloc[0]
        where = ", ".join(f"{c}={first[c]!r}" for c in ("model", "dataset", "protocol", "metric")
                          if c in first)
        raise ValueError(f"no width-1 row for {where}: retention needs metric(1); include 1.0 in "
                         "the sweep widths")
    stats["retention"] = stats["mean"] / stats["full"]
    cols = group + ["width"] + (["rel_compute"] if "rel_compute" in stats else []) + \
        ["mean", "std", "n_seeds", "full", "retention"]
    return stats[cols]
