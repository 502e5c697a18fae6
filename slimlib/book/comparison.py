"""Our curves next to the paper's: merge identical-compute widths, align by value, difference.

The paper's published curves (:mod:`slimlib.book.reference`) and this build's tables meet here:

* :func:`merge_identical_compute` merges widths that give the identical slimmed model
  (identical FLOPs) into one point, the way the authors' build script averages them (SSL4EO's
  s = 0.002 and 0.0025 are one published point);
* :func:`at_smallest_width` picks each curve's smallest-width row (the "retention at the
  smallest budget" the paper quotes);
* :func:`paper_axis` / :func:`with_paper_axis` give relative compute in the paper's FLOP
  convention (:data:`slimlib.book.reference.PAPER_CONVENTION`: fvcore-style, no attention
  products, LayerNorms counted), the x-axis of every overlay on published values;
* :func:`paper_difference` aligns our curve with a published one **by the value** of width
  or compute (never by position) and returns ``ours − paper`` with an interval where our side
  has one (seeds, binomial SE or bin spread) and says so where it has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CURVE_KEYS", "merge_identical_compute", "at_smallest_width", "paper_axis",
           "with_paper_axis", "standard_error", "paper_difference", "paired_difference"]

#: Columns that identify one curve in a sweep / retention / compute table (those present).
CURVE_KEYS: tuple[str, ...] = ("model", "dataset", "protocol", "metric", "parts", "order",
                               "scale", "train_fraction", "seed", "series", "count_attention",
                               "count_norms")


def _check(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} needs a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing} "
                         f"(have {list(frame.columns)})")


def _keys(frame: pd.DataFrame, by: Sequence[str] | None, exclude: Sequence[str] = ()) -> list[str]:
    if by is None:
        return [c for c in CURVE_KEYS if c in frame.columns and c not in exclude]
    by = [by] if isinstance(by, str) else list(by)
    _check(frame, by, "grouping")
    return by


def merge_identical_compute(table: pd.DataFrame, *, by: Sequence[str] | None = None,
                            compute: str | None = None, width: str = "width",
                            decimals: int = 12) -> pd.DataFrame:
    """One row per distinct compute value of each curve (widths with identical FLOPs merged).

    Two widths that give the same ``max(1, floor(s·d))`` in every slimmed layer build the
    identical model, so the authors average them into one published point (SSL4EO ViT-S:
    s = 0.002 and 0.0025, both ``d_h' = 3``). This does the same to our tables.

    Args:
        table: rows with ``width`` and a compute column, e.g. :func:`slimlib.retention` or
            :func:`slimlib.measure.compute_table` output; shape ``(n_rows, n_columns)``.
        by: columns that identify one curve; default the :data:`CURVE_KEYS` present.
        compute: the column whose equal values are merged; default ``"flops"`` if present,
            else ``"rel_compute"``.
        width: the width column.
        decimals: compute values are compared after rounding to this many decimals (the
            default only absorbs float noise; distinct FLOP counts never merge).

    Returns:
        One row per curve and distinct compute: numeric columns averaged over the merged
        widths, other columns from the first of them, ``width`` = the smallest merged width,
        ``widths`` = the merged widths joined by ``"|"`` (as the paper's ``s`` column writes
        them, e.g. ``"0.002|0.0025"``) and ``n_merged``.
    """
    if compute is None:
        compute = "flops" if "flops" in table.columns else "rel_compute"
    _check(table, [width, compute], "merge_identical_compute")
    keys = _keys(table, by, exclude=(width, compute))
    if table.empty:
        return table.assign(widths=pd.Series(dtype=str), n_merged=pd.Series(dtype=int))
    data = table.assign(_c=table[compute].astype(float).round(decimals),
                        **{width: table[width].astype(float)})
    data = data.sort_values([*keys, width])
    group = [*keys, "_c"]
    numeric = [c for c in data.columns if c not in group and c != width
               and pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])]
    other = [c for c in data.columns if c not in group and c != width and c not in numeric]
    grouped = data.groupby(group, sort=True, dropna=False)
    out = grouped[numeric].mean() if numeric else grouped.size().to_frame("_n").iloc[:, :0]
    if other:
        out = out.join(grouped[other].first())
    out[width] = grouped[width].min()
    out["widths"] = grouped[width].agg(lambda w: "|".join(f"{v:g}" for v in sorted(w)))
    out["n_merged"] = grouped[width].size()
    out = out.reset_index().drop(columns="_c")
    first = [c for c in table.columns if c in out.columns]
    return out[first + [c for c in ("widths", "n_merged") if c not in first]] \
        .sort_values([*keys, width]).reset_index(drop=True)


def at_smallest_width(table: pd.DataFrame, *, by: Sequence[str] | None = None,
                      width: str = "width") -> pd.DataFrame:
    """The row of each curve at its smallest width (the paper's "smallest budget").

    Args:
        table: any table with a ``width`` column (sweep, retention, compute, published rows
            from :func:`slimlib.book.reference.posthoc`, whose ``width`` is the stated/derived s).
        by: columns that identify one curve; default the :data:`CURVE_KEYS` present.
        width: the column to minimise (e.g. ``"x"`` for published compute).

    Returns:
        One row per curve, in the order of ``by``, index reset.
    """
    _check(table, [width], "at_smallest_width")
    keys = _keys(table, by, exclude=(width,))
    if table.empty:
        return table.copy()
    values = table[width].astype(float)
    if not keys:
        return table.loc[[values.idxmin()]].reset_index(drop=True)
    idx = values.groupby([table[k] for k in keys], sort=True, dropna=False).idxmin()
    return table.loc[idx.dropna().to_numpy()].reset_index(drop=True)


def paper_axis(model: str, widths: Sequence[float], *, profile: Any = None,
               parts: tuple[str, ...] = ("attn", "ffn")) -> pd.DataFrame:
    """Relative compute of ``model`` at ``widths`` in the paper's FLOP convention.

    FLOPs do not depend on the weights, so the model is built with ``pretrained=False`` at
    its native input, batch 1 (:data:`slimlib.book.reference.PAPER_CONVENTION`: no attention
    products, LayerNorms counted, as fvcore counts them). With a ``profile`` the table is
    cached like every compute table (:func:`slimlib.book.compute_table_cached`, the
    profile's model options apply); without one it is counted afresh and nothing is written.

    Returns:
        Columns ``model, width, flops_paper, rel_compute_paper``; one row per width (1.0 is
        always counted, as the denominator).
    """
    from slimlib.constants import PAPER_CONVENTION

    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a registry name, got {model!r}")
    ws = sorted({float(w) for w in widths} | {1.0})
    if any(not 0 < w <= 1 for w in ws):
        raise ValueError(f"widths must lie in (0, 1], got {list(widths)}")
    if profile is not None:
        from slimlib.book import compute_table_cached

        table = compute_table_cached(model, ws, parts=tuple(parts), profile=profile,
                                     **PAPER_CONVENTION)
    else:
        import torch

        from slimlib import models
        from slimlib.measure import compute_table

        encoder = models.load(model, pretrained=False).eval()
        spec = encoder.spec
        x = torch.randn(1, len(spec.bands), spec.input_size, spec.input_size,
                        generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            table = compute_table(encoder, ws, x, parts=tuple(parts), **PAPER_CONVENTION)
        table.insert(0, "model", model)
    out = table[["width", "flops", "rel_compute"]].rename(
        columns={"flops": "flops_paper", "rel_compute": "rel_compute_paper"})
    out.insert(0, "model", model)
    return out.reset_index(drop=True)


def with_paper_axis(table: pd.DataFrame, *, profile: Any = None,
                    model: str = "model") -> pd.DataFrame:
    """``table`` with a ``rel_compute_paper`` column: each row's relative compute in the
    paper's FLOP convention (:func:`paper_axis`), matched on model and width.

    A random-init control (``"galileo-nano [random init 1]"``) gets the compute of its
    architecture. ``rel_compute`` (this build's default count, attention products included)
    is kept, so a figure can show both axes.
    """
    from slimlib.sweeping.controls import split_label

    _check(table, [model, "width"], "with_paper_axis")
    if table.empty:
        return table.assign(rel_compute_paper=pd.Series(dtype=float))
    base = table[model].map(lambda m: split_label(m)[0])
    parts = []
    for name, rows in table.assign(_base=base).groupby("_base"):
        axis = paper_axis(str(name), rows["width"].astype(float).unique(), profile=profile)
        parts.append(axis.rename(columns={"model": "_base"}))
    axis = pd.concat(parts, ignore_index=True)[["_base", "width", "rel_compute_paper"]]
    axis["_w"] = axis["width"].round(9)
    out = table.assign(_base=base, _w=table["width"].astype(float).round(9))
    out = out.drop(columns=[c for c in ("rel_compute_paper",) if c in out.columns])
    out = out.merge(axis.drop(columns="width"), on=["_base", "_w"], how="left")
    return out.drop(columns=["_base", "_w"])


def standard_error(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The standard error of each row's value and where it comes from.

    Looks, in this order, for ``se`` (given: e.g. binomial SE of
    :func:`slimlib.book.claims.smallest_width_retention`; its source in ``se_source`` if
    present), ``std`` + ``n_seeds`` (seed spread of
    :func:`slimlib.retention`: SE = std/√n) and ``sd`` + ``n`` (spread of the runs in a bin,
    :func:`slimlib.book.plotting.bin_stats`: SE of the bin mean). Returns ``(se, source)``; ``se``
    is NaN where there is no spread to estimate it from (one seed, one run).
    """
    index = frame.index
    if "se" in frame.columns:
        source = frame["se_source"] if "se_source" in frame.columns \
            else pd.Series("given SE", index=index)
        return frame["se"].astype(float), source
    if {"std", "n_seeds"} <= set(frame.columns):
        n = frame["n_seeds"].astype(float)
        se = (frame["std"].astype(float) / np.sqrt(n)).where(n >= 2)
        return se, n.map(lambda k: f"SE over {int(k)} seeds" if k >= 2 else "one seed")
    if {"sd", "n"} <= set(frame.columns):
        n = frame["n"].astype(float)
        se = (frame["sd"].astype(float) / np.sqrt(n)).where(n >= 2)
        return se, n.map(lambda k: f"SE of the mean of {int(k)} runs" if k >= 2 else "one run")
    return pd.Series(np.nan, index=index), pd.Series("no spread", index=index)


def paper_difference(ours: pd.DataFrame, paper: pd.DataFrame, *, on: str = "width",
                     value: str = "retention", paper_value: str | None = None,
                     by: Sequence[str] = (), paper_on: str | None = None,
                     tolerance: float = 1e-6, z: float = 2.0,
                     deterministic: bool = False,
                     paper_extra: Sequence[str] = ()) -> pd.DataFrame:
    """``ours − paper`` at each published point, aligned by the VALUE of ``on``.

    Every published point is matched with our row of the same ``by`` group whose ``on``
    (width or relative compute) is nearest, if it lies within ``tolerance``; points without
    such a row are left out (their count is in ``.attrs["unmatched_paper"]``). Position in
    the tables plays no role, so a paper curve with a merged point or a missing width still
    lines up.

    Args:
        ours: our rows, one per ``by`` group and ``on`` value: ``[*by, on, value]`` and,
            for an interval, ``se`` or ``std, n_seeds`` or ``sd, n``
            (:func:`standard_error`). Shape ``(n_ours, ...)``.
        paper: published rows ``[*by, paper_on, paper_value]``, shape ``(n_paper, ...)``.
        on: the alignment column of ``ours`` (``"width"``, ``"rel_compute_paper"``, ``"bin"``).
        value: our value column; ``paper_value`` the paper's (default: the same name).
        by: columns both tables share that identify one curve (rename first where they
            differ, e.g. the paper's ``series`` to our ``model``); may be empty.
        paper_on: the paper's alignment column (default: ``on``).
        tolerance: largest ``|ours[on] − paper[paper_on]|`` that counts as the same point
            (1e-6 for widths; ~5e-5 for the paper's 4-decimal compute).
        z: interval half-width in standard errors.
        deterministic: our side has no randomness (e.g. FLOP counts): the interval column
            says ``"no interval: deterministic"``.
        paper_extra: further paper columns to carry into the result (e.g. the range of the
            published models, ``retention_min``/``retention_max``).

    Returns:
        One row per matched published point: ``*by, on, paper, ours, difference, diff_lo,
        diff_hi, interval, reading`` (``diff_lo/hi`` = difference ± z·SE of our side, NaN
        when there is none; ``reading`` says whether the paper's value lies inside our
        interval). The paper's side has no published spread, so the interval is ours alone.
    """
    paper_value = paper_value or value
    paper_on = paper_on or on
    by = [by] if isinstance(by, str) else list(by)
    _check(ours, [*by, on, value], "paper_difference (ours)")
    paper_extra = [paper_extra] if isinstance(paper_extra, str) else list(paper_extra)
    _check(paper, [*by, paper_on, paper_value, *paper_extra], "paper_difference (paper)")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    se, source = standard_error(ours)
    left = pd.DataFrame({**{k: ours[k].to_numpy() for k in by},
                         "_on": ours[on].astype(float).to_numpy(),
                         "ours": ours[value].astype(float).to_numpy(),
                         "_se": se.to_numpy(), "_src": source.to_numpy()})
    right = pd.DataFrame({**{k: paper[k].to_numpy() for k in by},
                          "_on": paper[paper_on].astype(float).to_numpy(),
                          "paper": paper[paper_value].astype(float).to_numpy(),
                          **{f"paper {c}": paper[c].to_numpy() for c in paper_extra}})
    left = left.dropna(subset=["_on"])
    right = right.dropna(subset=["_on"])
    rows = []
    groups = right.groupby(by, sort=True) if by else [((), right)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        mask = np.ones(len(left), dtype=bool)
        for k, v in zip(by, key, strict=True):
            mask &= (left[k] == v).to_numpy()
        cand = left[mask]
        if cand.empty:
            continue
        xs = cand["_on"].to_numpy()
        for _, p in part.iterrows():
            dist = np.abs(xs - p["_on"])
            i = int(np.argmin(dist))
            if dist[i] <= tolerance:
                rows.append({**dict(zip(by, key, strict=True)), on: cand["_on"].iloc[i],
                             "paper": p["paper"],
                             **{f"paper {c}": p[f"paper {c}"] for c in paper_extra},
                             "ours": cand["ours"].iloc[i],
                             "_se": cand["_se"].iloc[i], "_src": cand["_src"].iloc[i]})
    cols = [*by, on, "paper", *(f"paper {c}" for c in paper_extra), "ours", "difference",
            "diff_lo", "diff_hi", "interval", "reading"]
    if not rows:
        out = pd.DataFrame(columns=cols)
        out.attrs.update(unmatched_paper=len(right), matched=0)
        return out
    out = pd.DataFrame(rows)
    out["difference"] = out["ours"] - out["paper"]
    out["diff_lo"] = out["difference"] - z * out["_se"]
    out["diff_hi"] = out["difference"] + z * out["_se"]
    has = out["_se"].notna() & (out["_se"] > 0)
    out.loc[~has, ["diff_lo", "diff_hi"]] = np.nan

    def _interval(r: pd.Series, ok: bool) -> str:
        if ok:
            return f"[{r['diff_lo']:+.4f}, {r['diff_hi']:+.4f}] (±{z:g} {r['_src']})"
        if deterministic:
            return "no interval: deterministic"
        if r["_se"] == 0:
            return f"no interval: zero spread ({r['_src']})"
        return f"no interval: {r['_src']}"

    out["interval"] = [_interval(r, ok) for (_, r), ok in zip(out.iterrows(), has, strict=True)]
    out["reading"] = np.where(~has, "no interval", np.where(
        out["diff_lo"] > 0, "ours above paper", np.where(
            out["diff_hi"] < 0, "ours below paper", f"paper within ±{z:g} SE")))
    out = out[cols].sort_values([*by, on]).reset_index(drop=True)
    out.attrs.update(unmatched_paper=len(right) - len(out), matched=len(out))
    return out


def paired_difference(table: pd.DataFrame, first: str, second: str, *, value: str = "mean",
                      on: str = "width", by: Sequence[str] = ("dataset",),
                      name: str = "model") -> pd.DataFrame:
    """``second − first`` per ``on`` value (e.g. slimmable − regular training), with its SE.

    Args:
        table: :func:`slimlib.retention`-style rows of both ``name`` values:
            ``[name, *by, on, value]`` and, for an SE, what :func:`standard_error` reads.
        first, second: the two ``name`` values (e.g. the regular and the slimmable model).

    Returns:
        ``*by, on, rel_compute`` (of ``first``, if present), ``difference``, ``se``
        (√(SE₁² + SE₂²); NaN where either side has no spread) and ``se_source`` (where both
        SEs come from, e.g. ``"one seed / one seed"``), aligned by value of ``on``.
    """
    by = list(by)
    _check(table, [name, *by, on, value], "paired_difference")
    se, source = standard_error(table)
    data = table.assign(_se=se.to_numpy(), _src=source.to_numpy(),
                        _on=table[on].astype(float).round(9))
    parts = []
    for label in (first, second):
        part = data[data[name] == label]
        if part.empty:
            raise ValueError(f"no rows with {name}={label!r}; have {sorted(data[name].unique())}")
        cols = [*by, "_on", value, "_se", "_src"] + (["rel_compute"] if "rel_compute" in part
                                                     else [])
        parts.append(part[cols].set_index([*by, "_on"]))
    a, b = parts
    out = pd.DataFrame({"difference": b[value] - a[value],
                        "se": np.sqrt(a["_se"] ** 2 + b["_se"] ** 2),
                        "se_source": a["_src"].astype(str) + " / " + b["_src"].astype(str)}
                       ).dropna(subset=["difference"])
    if "rel_compute" in a:
        out.insert(0, "rel_compute", a["rel_compute"])
    out = out.reset_index().rename(columns={"_on": on})
    return out.sort_values([*by, on]).reset_index(drop=True)
