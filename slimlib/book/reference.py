"""The paper's published numbers, for side-by-side comparison.

Source: the project page of Hackel, Burgert, Demir (2026), repository
``hackelle/slimmable-rsfms``, file ``static/js/data.js`` at commit ``5a868ec0``, reshaped
into one row per published y-value (``slimlib/book/reference_data/paper_results.csv``).
Licence of that content: CC BY-SA 4.0 (see ``slimlib/book/reference_data/README.md``).
Cite the paper (:data:`CITATION`) when you use these numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from slimlib import constants as _constants

__all__ = ["CITATION", "LICENCE", "PAPER_CONVENTION", "CLASSIFICATION_DATASETS", "FIG1_SERIES",
           "SERIES_TO_MODEL", "load", "posthoc", "paper_compute", "widths_of",
           "convention_label", "compute_side_by_side", "smallest_budget_retention",
           "fig1_bins", "fig1_reference_lines", "native_gain", "newfms", "posthoc_mean"]

CITATION = (
    "Hackel, L., Burgert, T., Demir, B. (2026). How Much of a Model Do We Need? Redundancy and "
    "Slimmability in Remote Sensing Foundation Models. NeurIPS 2026. arXiv:2601.22841."
)
LICENCE = "CC BY-SA 4.0 (project page https://hackelle.github.io/slimmable-rsfms/)"

#: The paper's FLOP convention (defined in :mod:`slimlib.constants`).
PAPER_CONVENTION = _constants.PAPER_CONVENTION

#: The four classification datasets of the paper's headline ("≈ 85 % at the smallest budget").
CLASSIFICATION_DATASETS: tuple[str, ...] = ("m-eurosat", "m-brick-kiln", "m-so2sat",
                                            "m-bigearthnet")

#: The eight RS FMs pooled in the paper's Fig. 1a (Panopticon and Copernicus-FM were added
#: later, for the rebuttal, and are not in its pooled bins or its "≈ 85 %" headline).
FIG1_SERIES: tuple[str, ...] = ("DOFA (base)", "DOFA (large)", "TerraMind-1.0 (base)",
                                "TerraMind-1.0 (large)", "Prithvi-EO-2.0 (300M)",
                                "Prithvi-EO-2.0 (600M)", "SSL4EO ViT-S (MoCo)",
                                "SSL4EO ViT-S (Dino)")

#: Paper series label -> slimlib registry name of the same model.
SERIES_TO_MODEL = {
    "DOFA (base)": "dofa-base",
    "DOFA (large)": "dofa-large",
    "TerraMind-1.0 (base)": "terramind-v1-base",
    "TerraMind-1.0 (large)": "terramind-v1-large",
    "Prithvi-EO-2.0 (300M)": "prithvi-eo-2-300m",
    "Prithvi-EO-2.0 (600M)": "prithvi-eo-2-600m",
    "SSL4EO ViT-S (MoCo)": "ssl4eo-vits16-moco",
    "SSL4EO ViT-S (Dino)": "ssl4eo-vits16-dino",
    "Panopticon": "panopticon-vitb14",
    "Copernicus-FM": "copernicusfm-base",
}


def _parse_extra(text: object) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


def widths_of(s: object) -> tuple[float, ...]:
    """The width factors of one published point: ``"0.1"`` -> ``(0.1,)``; a merged point
    ``"0.002|0.0025"`` (identical FLOPs) -> ``(0.002, 0.0025)``; missing -> ``()``."""
    if s is None or (isinstance(s, float) and np.isnan(s)) or str(s) == "":
        return ()
    return tuple(float(part) for part in str(s).split("|"))


@lru_cache(maxsize=1)
def _load_cached() -> pd.DataFrame:
    path = resources.files("slimlib.book") / "reference_data" / "paper_results.csv"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, dtype={"extra": str})
    extras = table["extra"].map(_parse_extra)
    table["s"] = extras.map(lambda e: e.get("s") or e.get("s_derived"))
    table["stat"] = extras.map(lambda e: e.get("stat"))
    merged = table["s"].map(widths_of)
    table["width"] = merged.map(lambda w: min(w) if w else np.nan)
    table["merged"] = merged.map(len) > 1
    return table


def load() -> pd.DataFrame:
    """All 2,932 published values: ``section, dataset, series, protocol, variable, x_name, x,
    y, extra`` plus ``s`` (the width, stated or derived by order; ``"0.002|0.0025"`` where two
    widths gave identical FLOPs), ``width`` (float; the smaller width of a merged point),
    ``merged`` (bool) and ``stat`` (fig1: ``bin_mean`` or a band edge)."""
    return _load_cached().copy()


def posthoc(section: str = "posthoc") -> pd.DataFrame:
    """Post-hoc (or ``"native"``) curves with retention = y / y(x = 1) per series and dataset."""
    if section not in ("posthoc", "native"):
        raise ValueError(f"section must be 'posthoc' or 'native', got {section!r}")
    table = load()
    table = table[table["section"] == section].copy()
    table["x"] = table["x"].astype(float)
    full = (table[table["x"] == 1.0].groupby(["dataset", "series", "protocol"])["y"].mean()
            .rename("y_full"))
    table = table.join(full, on=["dataset", "series", "protocol"])
    table["retention"] = table["y"] / table["y_full"]
    return table.drop(columns=["y_full"])


def posthoc_mean(dataset: str = "m-eurosat", *, protocol: str = "knn",
                 section: str = "posthoc", value: str = "retention") -> pd.DataFrame:
    """The published curves of one dataset averaged over the models, per width.

    Returns ``width, x`` (mean relative compute of the models), ``value`` (mean over models),
    ``<value>_min``, ``<value>_max`` (the range of the published models) and ``n_models``.
    Models are paired by their published width (SSL4EO's merged point counts at 0.002).
    """
    table = posthoc(section)
    table = table[(table["dataset"] == dataset) & (table["protocol"] == protocol)]
    if table.empty:
        raise ValueError(f"no published {section} rows for dataset={dataset!r}, "
                         f"protocol={protocol!r}")
    if value not in table.columns:
        raise ValueError(f"value must be a column of the published rows, got {value!r}")
    out = table.groupby("width").agg(x=("x", "mean"), **{value: (value, "mean")},
                                     **{f"{value}_min": (value, "min"),
                                        f"{value}_max": (value, "max")},
                                     n_models=("series", "nunique"))
    return out.reset_index()


def paper_compute(models: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's measured relative compute per model and width (from the m-eurosat curves).

    Args:
        models: keep only these slimlib registry names (default: all ten published models).

    Returns columns ``series, model, s, width, merged, rel_compute``; SSL4EO's merged point
    appears once with ``s = "0.002|0.0025"``, ``width = 0.002`` and ``merged = True``.
    """
    table = posthoc()
    table = table[table["dataset"] == "m-eurosat"]
    out = table[["series", "s", "width", "merged", "x"]].rename(
        columns={"x": "rel_compute"}).drop_duplicates()
    out["model"] = out["series"].map(SERIES_TO_MODEL)
    if models is not None:
        out = out[out["model"].isin(list(models))]
    return out[["series", "model", "s", "width", "merged", "rel_compute"]].reset_index(drop=True)


def convention_label(count_attention: bool, count_norms: bool) -> str:
    """A readable name of a FLOP-counting convention (the paper's is marked as such)."""
    if not count_attention and count_norms:
        return "paper convention (no attention products, norms counted)"
    return {(True, False): "attention products counted",
            (False, False): "no attention products, norms not counted",
            (True, True): "attention products and norms counted"}[(bool(count_attention),
                                                                    bool(count_norms))]


def compute_side_by_side(ours: pd.DataFrame) -> pd.DataFrame:
    """Our relative compute next to the paper's, for every model, width and FLOP convention.

    Args:
        ours: concatenated compute tables (:func:`slimlib.book.compute_table_cached`):
            ``model, width, rel_compute`` and ``count_attention`` / ``count_norms`` (missing
            means the default: attention counted, norms not); rows that slim only one layer
            type (``parts`` other than ``attn+ffn``) are ignored.

    Returns:
        One row per model, convention and published width (aligned by width value; SSL4EO's
        merged point is compared at the identical-FLOPs width 0.002 after
        :func:`slimlib.book.comparison.merge_identical_compute`): ``model, convention, width, s,
        paper, ours, difference, diff_lo, diff_hi, interval`` (FLOP counts are deterministic:
        ``diff_lo``/``diff_hi`` are NaN and ``interval`` says so). Empty if no
        model of ``ours`` has published compute.
    """
    from slimlib.book.comparison import merge_identical_compute, paper_difference

    need = {"model", "width", "rel_compute"}
    if not need <= set(ours.columns):
        raise ValueError(f"compute_side_by_side needs columns {sorted(need)}; have "
                         f"{list(ours.columns)} (pass compute_table_cached outputs)")
    rows = ours.copy()
    if "parts" in rows:
        rows = rows[rows["parts"] == "attn+ffn"]
    rows["count_attention"] = rows.get("count_attention", True)
    rows["count_norms"] = rows.get("count_norms", False)
    rows["count_attention"] = rows["count_attention"].astype(bool)
    rows["count_norms"] = rows["count_norms"].astype(bool)
    paper = paper_compute(rows["model"].unique())
    cols = ["model", "convention", "width", "s", "paper", "ours", "difference", "diff_lo",
            "diff_hi", "interval"]
    out = []
    for (attn, norms), part in rows.groupby(["count_attention", "count_norms"]):
        merged = merge_identical_compute(
            part[["model", "width", "flops", "rel_compute"]] if "flops" in part
            else part[["model", "width", "rel_compute"]], by=["model"])
        diff = paper_difference(merged, paper, on="width", value="rel_compute", by=["model"],
                                deterministic=True)
        if diff.empty:
            continue
        diff = diff.merge(paper[["model", "width", "s"]], on=["model", "width"], how="left")
        diff["convention"] = convention_label(attn, norms)
        out.append(diff)
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True)[cols].sort_values(
        ["model", "convention", "width"]).reset_index(drop=True)


def smallest_budget_retention(*, datasets: Sequence[str] | None = CLASSIFICATION_DATASETS,
                              protocol: str | None = "knn", section: str = "posthoc",
                              series: Sequence[str] | None = None,
                              wide: bool = True) -> pd.DataFrame:
    """Published retention at each model's smallest width (the paper's "smallest budget").

    Args:
        datasets: datasets to keep (default: the four classification datasets of the
            headline; ``None`` = all).
        protocol: protocol to keep (``None`` = all).
        section: ``"posthoc"`` or ``"native"``.
        series: published models to keep (default all; :data:`FIG1_SERIES` gives the eight
            RS FMs the camera-ready's "≈ 85 %" averages over).
        wide: a ``series × dataset`` table with a ``mean`` column (over datasets) and a
            ``mean over models`` row, as the paper averages; else the tidy rows
            (``series, dataset, protocol, s, x, retention``).
    """
    from slimlib.book.comparison import at_smallest_width

    table = posthoc(section)
    if datasets is not None:
        table = table[table["dataset"].isin(list(datasets))]
    if protocol is not None:
        table = table[table["protocol"] == protocol]
    if series is not None:
        table = table[table["series"].isin(list(series))]
    if table.empty:
        raise ValueError(f"no published {section} rows for datasets={datasets}, "
                         f"protocol={protocol!r}, series={series}")
    small = at_smallest_width(table, by=["series", "dataset", "protocol"], width="x")
    small = small[["series", "dataset", "protocol", "s", "x", "retention"]]
    if not wide:
        return small
    out = small.pivot_table(index="series", columns="dataset", values="retention")
    out["mean"] = out.mean(axis=1)
    out.loc["mean over models"] = out.mean()
    return out


def fig1_bins(section: str = "fig1a") -> pd.DataFrame:
    """Published Fig. 1a/1b bins: ``series, bin, mean, lo, hi`` (mean ± 2 SD over the runs in
    each 10 % compute bin; ``lo``/``hi`` NaN where the paper drew no band)."""
    if section not in ("fig1a", "fig1b"):
        raise ValueError(f"section must be 'fig1a' or 'fig1b', got {section!r}")
    rows = load()
    rows = rows[(rows["section"] == section) & rows["x"].notna()].copy()
    rows["bin"] = rows["x"].astype(float)
    rows["series"] = rows["series"].str.replace(r" band$", "", regex=True)
    stats = rows.pivot_table(index=["series", "bin"], columns="stat", values="y",
                             aggfunc="mean")
    out = pd.DataFrame({"mean": stats.get("bin_mean"),
                        "lo": stats.get("bin_mean_minus_2sd"),
                        "hi": stats.get("bin_mean_plus_2sd")}, index=stats.index)
    return out.dropna(subset=["mean"]).reset_index()


def fig1_reference_lines() -> pd.DataFrame:
    """Fig. 1b's horizontal reference lines (CV MAE at full width): ``series, y``."""
    rows = load()
    rows = rows[(rows["section"] == "fig1b") & rows["x"].isna()]
    return rows[["series", "y"]].reset_index(drop=True)


def native_gain(dataset: str = "m-eurosat") -> pd.DataFrame:
    """The paper's gain of slimmable over regular pretraining per width (ViT-B, k-NN).

    Points are paired by their published width (``s``), not by position. Returns ``method``
    (``MAE``/``MoCo``), ``width``, ``regular``, ``slimmable``, ``gain`` (slimmable −
    regular accuracy) and the retention of both.
    """
    table = posthoc("native")
    table = table[table["dataset"] == dataset].copy()
    if table.empty:
        raise ValueError(f"no published native rows for {dataset!r}; have "
                         f"{sorted(posthoc('native')['dataset'].unique())}")
    table["method"] = table["series"].str.split(":").str[0]
    table["training"] = np.where(table["series"].str.contains("slimmable"), "slimmable",
                                 "regular")
    acc = table.pivot_table(index=["method", "width"], columns="training", values="y")
    ret = table.pivot_table(index=["method", "width"], columns="training", values="retention")
    out = acc.join(ret.add_suffix(" retention")).reset_index()
    out["gain"] = out["slimmable"] - out["regular"]
    out["retention gain"] = out["slimmable retention"] - out["regular retention"]
    out.columns.name = None
    return out


def newfms(dataset: str = "m-eurosat") -> pd.DataFrame:
    """The rebuttal's k-NN and linear-probe values at s = 0.001, 0.01, 0.1, 0.5, 1.0.

    Returns ``series, protocol, width, x, y, retention`` (retention = y / y(s = 1)).
    """
    rows = load()
    rows = rows[(rows["section"] == "rebuttal.newfms") & (rows["dataset"] == dataset)].copy()
    if rows.empty:
        raise ValueError(f"no rebuttal newfms rows for {dataset!r}")
    rows["x"] = rows["x"].astype(float)
    full = rows[np.isclose(rows["width"], 1.0)].groupby(["series", "protocol"])["y"].mean()
    rows = rows.join(full.rename("full"), on=["series", "protocol"])
    rows["retention"] = rows["y"] / rows["full"]
    return rows[["series", "protocol", "width", "x", "y", "retention"]].reset_index(drop=True)
