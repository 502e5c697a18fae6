"""The tables the book's figures draw, computed without drawing anything.

:func:`compute_bins` / :func:`bin_stats` are the paper's Fig. 1 bins (10 % of compute) and
their mean ± 2 SD; :func:`per_run_retention` divides each run by its own width-1 value (how
Fig. 1 pools runs); :func:`first_row_retention` is the authors' own convention (each row over
the *first* width-1 row of its curve, as the generator of their project page does);
:func:`paper_fig_parts` splits the published Fig. 1 rows into bin means
and bands; :func:`check_columns` is the one column check every figure helper uses. The
drawing is :mod:`slimlib.book.plotting`.

:func:`show_table` is how a page shows a table: a compact view (chosen columns, numbers
rounded, never a cell cut or a column elided, "—" with a footnote where a value does not
apply) and the full table as a CSV the reader can download.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["check_columns", "compute_bins", "bin_stats", "per_run_retention",
           "first_row_retention", "paper_fig_parts",
           "compact_view", "write_csv", "table_html", "show_table", "NOT_APPLICABLE", "DASH",
           "TABLE_STYLE", "NOWRAP_CHARS"]

#: What a "—" cell means unless the page says more (``missing=``).
NOT_APPLICABLE = "no value: does not apply to this row"
#: The mark of a cell without a value.
DASH = "—"


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
        from slimlib.book.reference import _parse_extra

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


def _cell(value, precision: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value)) if precision == 0 else f"{value:.{precision}f}"
        return f"{value:.{precision}f}" if abs(value) >= 10 ** -precision or value == 0 \
            else f"{value:.2g}"
    return str(value)


def compact_view(frame: pd.DataFrame, *, columns: Sequence[str] | None = None,
                 missing: Mapping[str, str] | str | None = None, precision: int = 3,
                 max_rows: int = 40) -> tuple[pd.DataFrame, list[str]]:
    """The table a page shows: every cell a string, no NaN.

    A named (non-range) index becomes leading columns. Columns without any value are left
    out; a missing value elsewhere shows :data:`DASH` and a footnote names its columns and
    why (``missing[column]``, else :data:`NOT_APPLICABLE`). More than ``max_rows`` rows:
    the first ``max_rows`` and a note (the CSV holds all).

    Args:
        columns: the columns to show (the compact view); ``None``: all.
        missing: column -> why a cell of it can be empty (the footnote); one text: the
            reason for every column.
        precision: decimals of floats (tiny values keep 2 significant digits).

    Returns:
        ``(view, notes)``.

    Raises:
        ValueError: ``columns`` names a column the table lacks.
    """
    data = frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index()
    data.columns = [" / ".join(str(x) for x in c if str(x) != "") if isinstance(c, tuple)
                    else str(c) for c in data.columns]
    if columns is not None:
        check_columns(data, list(columns), "compact_view")
        data = data[list(columns)]
    notes = []
    empty = [c for c in data.columns if data[c].isna().all()]
    if empty and len(data):
        notes.append(f"Not shown (no value in any row): {', '.join(empty)}.")
        data = data.drop(columns=empty)
    if isinstance(missing, str):
        missing = dict.fromkeys(data.columns, missing)
    missing = dict(missing or {})
    for column in data.columns:
        n = int(data[column].isna().sum())
        if n:
            notes.append(f"{DASH} in {column} ({n} of {len(data)} rows): "
                         f"{missing.get(column, NOT_APPLICABLE)}.")
    if len(data) > max_rows:
        notes.append(f"First {max_rows} of {len(data)} rows shown; the CSV holds all.")
        data = data.head(max_rows)
    view = data.apply(lambda col: col.map(lambda v: _cell(v, precision))).astype(str)
    return view.reset_index(drop=True), notes


def write_csv(frame: pd.DataFrame, name: str, *,
              directory: str | os.PathLike = "tables") -> Path:
    """Write the full table (index kept where it is named) to ``directory/name.csv``
    atomically; returns the path."""
    from slimlib._io import atomic_path

    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"table name must be a plain file name, got {name!r}")
    path = Path(directory) / f"{name}.csv"
    keep_index = not isinstance(frame.index, pd.RangeIndex)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=keep_index)
    return path


#: Cell padding of every shown table, so adjacent numbers never run together ("384", "6"
#: printed as "3846" in a table without it); short cells (names, numbers) never wrap, so a
#: name such as "rs-moco-tiny-slimmable" is never broken at its hyphens.
TABLE_STYLE = ("<style>table.slimlib-table td, table.slimlib-table th {padding: 0.25em 0.8em; "
               "font-variant-numeric: tabular-nums;} table.slimlib-table .nw "
               "{white-space: nowrap;}</style>")

#: Cells up to this many characters never wrap; longer text (reasons, claims) does.
NOWRAP_CHARS = 32


def table_html(view: pd.DataFrame) -> str:
    """HTML of a :func:`compact_view`: the ``dataframe`` class the book's theme styles, with
    padded cells (:data:`TABLE_STYLE`), short cells unbroken, no index, no cell cut."""
    from html import escape

    def cell(text: str) -> str:
        text = escape(str(text))
        return f'<span class="nw">{text}</span>' if len(text) <= NOWRAP_CHARS else text

    body = view.apply(lambda col: col.map(cell))
    body.columns = [cell(c) for c in view.columns]
    return TABLE_STYLE + body.to_html(index=False, border=0, escape=False, na_rep=DASH,
                                      classes="slimlib-table")


def show_table(frame: pd.DataFrame, name: str, *, compact_columns: Sequence[str] | None = None,
               missing: Mapping[str, str] | str | None = None, precision: int = 3,
               max_rows: int = 40, directory: str | os.PathLike = "tables") -> None:
    """Show a compact table on the page and offer the full one as a CSV download.

    Writes ``frame`` whole to ``directory/name.csv`` (relative paths resolve against the
    page's folder, where the book runs the chapter), displays :func:`compact_view` and, under
    it, its footnotes and a MyST ``{download}`` link to the CSV (the book renders Markdown
    outputs as MyST, ``nb_render_markdown_format: myst``, so Sphinx copies the file into the
    built site). Outside IPython only the CSV is written. Returns nothing, so a cell ending
    in it shows no extra output.
    """
    path = write_csv(frame, name, directory=directory)
    view, notes = compact_view(frame, columns=compact_columns, missing=missing,
                               precision=precision, max_rows=max_rows)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the book extras
        return
    if get_ipython() is None:
        return
    display(HTML(table_html(view)))
    n_index = 0 if isinstance(frame.index, pd.RangeIndex) else frame.index.nlevels
    shape = f"{len(frame)} rows × {len(frame.columns) + n_index} columns"
    link = Path(directory) / path.name if not Path(directory).is_absolute() else path
    lines = [*notes, f"Full table ({shape}): {{download}}`{path.name} <{link.as_posix()}>`"]
    display(Markdown("\n\n".join(lines)))
