"""Figure helpers for the companion book (matplotlib/seaborn, tidy tables in, Axes out).

Every helper draws on a given :class:`matplotlib.axes.Axes` (or makes a figure) and returns
it, so chapters stay narrative + calls and tests can inspect the artists. Wherever the paper
publishes the same quantity, its values are drawn with :data:`PAPER_LABEL` in the legend.

Tables (Fig. 1 bins, per-run retention, :func:`show_table`) come from
:mod:`slimlib.book.plot_tables`, the schematic from :mod:`slimlib.book.diagrams` (re-exported here).
Every curve takes its model's colour from :mod:`slimlib.book.palette` (the same on every page; a
random-init control a lighter variant); ``style`` columns separate kinds of curve of one
model by line style; published curves are dashed; legends sit outside the axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from slimlib.book import palette
from slimlib.book.diagrams import architecture_diagram
from slimlib.book.palette import kind_style, legend, model_color, model_of, series_style
from slimlib.book.plot_tables import (
    bin_stats,
    check_columns,
    compute_bins,
    paper_fig_parts,
    per_run_retention,
    show_table,
)

__all__ = ["PAPER_LABEL", "compute_bins", "bin_stats", "per_run_retention", "retention_vs_compute",
           "metric_vs_compute", "fig1a", "paper_overlay", "architecture_diagram",
           "compute_curves", "band_over_seeds", "paper_fig_parts", "with_controls",
           "ours_vs_paper", "difference_plot", "fig1b", "PAPER_AXIS_LABEL", "control_band",
           "model_color", "model_of", "kind_style", "series_style", "show_table", "legend"]

#: Legend label of every published value drawn in the book.
PAPER_LABEL = "paper (Hackel et al. 2026)"

#: x-axis label of relative compute in the paper's FLOP convention.
PAPER_AXIS_LABEL = ("relative compute FLOPs(s)/FLOPs(1), paper convention "
                    "(no attention products, norms counted)")

_AXIS_LABELS = {
    "rel_compute": "relative compute FLOPs(s)/FLOPs(1), this build's count (attention counted)",
    "rel_compute_paper": PAPER_AXIS_LABEL,
    "width": "width factor s",
    "bin": "relative compute bin (floor(10·FLOPs(s)/FLOPs(1))/10)",
}


def _new_ax(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def _finish(ax: Axes, *, xlabel: str, ylabel: str, logx: bool = False, unit_line: bool = False,
            title: str | None = None, legend_size: float = 7,
            xlabel_size: float | None = None, outside: bool = True) -> Axes:
    """The decoration every curve axis shares: log x (optional), labels, a dotted line at 1
    (retention), grid, title and legend."""
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=xlabel_size)
    ax.set_ylabel(ylabel)
    if unit_line:
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return legend(ax, fontsize=legend_size, outside=outside)


def retention_vs_compute(table: pd.DataFrame, *, hue: str = "model", y: str = "retention",
                         ax: Axes | None = None, logx: bool = True,
                         title: str | None = None, style: str | None = None) -> Axes:
    """One line per ``hue`` (and ``style``) value: ``y`` (default retention) against relative
    compute; colour from the model named by ``hue``, line style from ``style``.

    ``table`` is :func:`slimlib.retention` output (``rel_compute``, ``retention`` and ``hue``).
    """
    check_columns(table, ["rel_compute", y, hue, *([style] if style else [])],
                  "retention_vs_compute")
    ax = _new_ax(ax)
    for label, kind, part in palette.curves(table, hue, style):
        part = part.sort_values("rel_compute")
        ax.plot(part["rel_compute"], part[y], lw=1.4, label=label,
                **palette.ours_style(str(part[hue].iloc[0]), kind,
                                     palette.style_kinds(table, style)))
    return _finish(ax, xlabel="relative compute FLOPs(s) / FLOPs(1)",
                   ylabel=y.replace("_", " "), logx=logx, unit_line=y == "retention",
                   title=title)


def metric_vs_compute(table: pd.DataFrame, metric: str, *, hue: str = "model",
                      ax: Axes | None = None, logx: bool = True, style: str | None = None) -> Axes:
    """A redundancy metric (``protocol="features"`` rows of a sweep) against relative compute,
    one line per ``hue`` (model colour) and ``style`` (e.g. dataset) value.

    Values are averaged over seeds per width (features rows usually have one seed).
    """
    keys = [hue, *([style] if style else [])]
    check_columns(table, ["metric", "value", "rel_compute", *keys], "metric_vs_compute")
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no rows with metric={metric!r}; have {sorted(table['metric'].unique())}")
    mean = rows.groupby([*keys, "rel_compute"], as_index=False)["value"].mean()
    ax = _new_ax(ax)
    for label, kind, part in palette.curves(mean, hue, style):
        part = part.sort_values("rel_compute")
        ax.plot(part["rel_compute"], part["value"], label=label,
                **palette.ours_style(str(part[hue].iloc[0]), kind,
                                     palette.style_kinds(mean, style)))
    return _finish(ax, xlabel="relative compute", ylabel=metric.replace("_", " "), logx=logx)


def band_over_seeds(table: pd.DataFrame, *, hue: str, y: str = "value",
                    ax: Axes | None = None, logx: bool = True,
                    style: str | None = None) -> Axes:
    """Mean line and min–max band over seeds per width for each ``hue`` (and ``style``)
    value; colour from the model named by ``hue``, line style from ``style``."""
    keys = [hue, *([style] if style else [])]
    check_columns(table, ["rel_compute", "seed", y, *keys], "band_over_seeds")
    stats = (table.groupby([*keys, "width"])
             .agg(x=("rel_compute", "mean"), mean=(y, "mean"), lo=(y, "min"), hi=(y, "max"))
             .reset_index().sort_values("x"))
    ax = _new_ax(ax)
    for label, kind, part in palette.curves(stats, hue, style):
        (line,) = ax.plot(part["x"], part["mean"], label=label,
                          **palette.ours_style(str(part[hue].iloc[0]), kind,
                                               palette.style_kinds(stats, style)))
        ax.fill_between(part["x"], part["lo"], part["hi"], color=line.get_color(),
                        alpha=0.12)
    return _finish(ax, xlabel="relative compute", ylabel=y, logx=logx)


def paper_overlay(paper: pd.DataFrame, *, x: str = "x", y: str = "retention",
                  series: str = "series", ax: Axes | None = None, logx: bool = True,
                  ls: str = "--", outside: bool = True) -> Axes:
    """Draw published curves (e.g. :func:`slimlib.book.reference.posthoc`) dashed and labelled
    ``"<series> — paper (Hackel et al. 2026)"``, in each model's colour. Axis labels the axes
    already has are kept; ``outside=False`` keeps the legend inside (side-by-side panels)."""
    check_columns(paper, [x, y, series], "paper_overlay")
    ax = _new_ax(ax)
    for name, part in paper.groupby(series, sort=True):
        part = part.sort_values(x)
        ax.plot(part[x].astype(float), part[y].astype(float), lw=1.2,
                label=f"{name} — {PAPER_LABEL}", **{**palette.paper_style(name), "ls": ls})
    return _finish(ax, xlabel=ax.get_xlabel() or "relative compute", ylabel=ax.get_ylabel() or y,
                   logx=logx, legend_size=6, outside=outside)


def _draw_bins(ax: plt.Axes, ours: Mapping, name: str) -> None:
    """Our binned curves (``label -> bin, mean, lo, hi``; a ``(label, kind)`` key draws the
    label's colour in the kind's line style), each a line with its band."""
    kinds = list(dict.fromkeys(k[1] for k in ours if isinstance(k, tuple)))
    for key, stats in ours.items():
        label, kind = key if isinstance(key, tuple) else (key, None)
        check_columns(stats, ["bin", "mean", "lo", "hi"], name)
        stats = stats.sort_values("bin")
        text = f"{label} (this build)" if kind is None else f"{label}, {kind} (this build)"
        style = series_style(str(label), kind,
                             kind_index=None if kind is None else kinds.index(kind))
        (line,) = ax.plot(stats["bin"], stats["mean"], ms=4, label=text, **style)
        ax.fill_between(stats["bin"], stats["lo"], stats["hi"], color=line.get_color(),
                        alpha=0.12)


def fig1a(ours: Mapping[str, pd.DataFrame], paper: pd.DataFrame | None = None, *,
          ax: Axes | None = None) -> Axes:
    """Fig. 1a: retention vs compute in 10 % bins, mean ± 2 SD bands.

    Args:
        ours: label (or ``(label, kind)``) -> :func:`bin_stats` output (``bin, mean, lo, hi``).
        paper: rows of ``reference.load()`` with ``section == "fig1a"`` (optional); drawn
            dashed with the paper's own bands.
    """
    ax = _new_ax(ax, (6.5, 4.2))
    _draw_bins(ax, ours, "fig1a")
    if paper is not None and len(paper):
        mean, bands = paper_fig_parts(paper)
        styles = palette.paper_styles(sorted(mean["series"].unique()))
        for name, part in mean.groupby("series", sort=True):
            part = part.sort_values("x")
            (line,) = ax.plot(part["x"], part["y"], label=f"{name} — {PAPER_LABEL}",
                              **styles[name])
            band = bands.get(name)
            if band is not None:
                ax.fill_between(band["x"], band["lo"], band["hi"], color=line.get_color(),
                                alpha=0.08, hatch="//")
    ax.set_xlabel("relative compute bin (floor(10·FLOPs(s)/FLOPs(1))/10)")
    ax.set_ylabel("retention metric(s) / metric(1)")
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    return legend(ax, fontsize=6)


def compute_curves(tables: Mapping, *, ax: Axes | None = None) -> Axes:
    """Relative compute vs width factor, one line per key: a label (its model's colour), or
    ``(label, kind)`` (the label's model colour in the kind's line style, e.g. ``("galileo-nano",
    "FFN only")``)."""
    ax = _new_ax(ax)
    kinds = list(dict.fromkeys(k[1] for k in tables if isinstance(k, tuple)))
    for key, table in tables.items():
        label, kind = key if isinstance(key, tuple) else (key, None)
        check_columns(table, ["width", "rel_compute"], "compute_curves")
        t = table.sort_values("width")
        text = str(label) if kind is None else f"{label}, {kind}"
        style = series_style(str(label), kind,
                             kind_index=None if kind is None else kinds.index(kind))
        ax.plot(t["width"], t["rel_compute"], label=text, ms=3, **style)
    ax.set_xscale("log")
    ax.set_xlabel("width factor s")
    ax.set_ylabel("relative compute")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    return legend(ax, fontsize=7)


def with_controls(cmp: pd.DataFrame, *, title: str | None = None,
                  axes: Sequence[Axes] | None = None) -> Figure:
    """Two panels for one model on one dataset and protocol, with both controls drawn.

    Left: the metric against relative compute (error bars: ± 1 SE), the random-init
    controls of the same architecture (line: mean over init seeds; band: min–max) and the
    embedding-only floor (horizontal line). Right: retention metric(s)/metric(1) of the
    pretrained model and of the random-init controls (their own width-1 value), and the floor
    as a fraction of the pretrained width-1 value.

    Args:
        cmp: :func:`slimlib.sweeping.controls.compare` rows of ONE model, dataset and protocol.
    """
    check_columns(cmp, ["rel_compute", "value", "se", "random_mean", "random_min",
                         "random_max", "retention", "random_retention", "full"], "with_controls")
    groups = cmp.groupby(["model", "dataset", "protocol"]).ngroups
    if groups != 1:
        raise ValueError(f"with_controls draws one model/dataset/protocol; got {groups}")
    cmp = cmp.sort_values("rel_compute")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    x = cmp["rel_compute"]
    n_random = int(cmp["n_random"].max()) if "n_random" in cmp else 0
    left, right = axes
    model = str(cmp["model"].iloc[0])
    own, ctrl = model_color(model, control=False), model_color(model, control=True)
    left.errorbar(x, cmp["value"], yerr=cmp["se"], marker="o", ms=3, capsize=2, color=own,
                  label="pretrained (± 1 SE)")
    left.plot(x, cmp["random_mean"], color=ctrl, ls="-.", marker=".",
              label=f"random init, mean of {n_random} seeds")
    left.fill_between(x, cmp["random_min"], cmp["random_max"], color=ctrl, alpha=0.25,
                      label="random init, min–max")
    right.plot(x, cmp["retention"], marker="o", ms=3, color=own, label="pretrained")
    right.plot(x, cmp["random_retention"], color=ctrl, ls="-.", marker=".",
               label="random init (own width-1 value)")
    if "floor" in cmp and cmp["floor"].notna().any():
        floor = float(cmp["floor"].iloc[0])
        full = float(cmp["full"].iloc[0])
        left.axhline(floor, color=own, ls=":", lw=1.2,
                     label=f"embedding-only floor {floor:.3f}")
        right.axhline(floor / full, color=own, ls=":", lw=1.2,
                      label="embedding-only floor / pretrained(1)")
    right.axhline(1.0, color="0.6", lw=0.8, ls=":")
    metric = str(cmp["metric"].iloc[0]).replace("_", " ") if "metric" in cmp else "metric"
    left.set_ylabel(metric)
    right.set_ylabel("retention")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("relative compute FLOPs(s) / FLOPs(1)")
        ax.grid(alpha=0.3)
        legend(ax, fontsize=7)
    first = cmp.iloc[0]
    fig.suptitle(title or f"{first['model']} on {first['dataset']} ({first['protocol']}), "
                 "with its controls")
    fig.tight_layout()
    return fig


def control_band(cmp: pd.DataFrame, ax: Axes, *, x: str = "rel_compute",
                 retention: bool = False, floor: bool = True,
                 label: str = "random init") -> Axes:
    """Draw both controls on an existing axis: the random-init networks of the same
    architecture (band: min–max over init seeds, dashed: their mean) and the embedding-only
    floor (dotted horizontal line).

    Args:
        cmp: :func:`slimlib.sweeping.controls.compare` rows of ONE model, dataset and protocol.
        x: the axis's x column (``"rel_compute_paper"`` after
            :func:`slimlib.book.comparison.with_paper_axis`).
        retention: draw retention (random init over its own width-1 value; the floor over
            the pretrained width-1 value) instead of the metric.
        floor: also draw the floor (``False`` where several models share one axis and
            :func:`ours_vs_paper` draws each model's floor).
    """
    check_columns(cmp, [x, "random_mean", "random_min", "random_max", "full"], "control_band")
    groups = cmp.groupby(["model", "dataset", "protocol"]).ngroups
    if groups != 1:
        raise ValueError(f"control_band draws one model/dataset/protocol; got {groups}")
    cmp = cmp.sort_values(x)
    scale = 1.0
    if retention:
        check_columns(cmp, ["random_full"], "control_band")
        scale = 1.0 / cmp["random_full"].to_numpy()
    model = str(cmp["model"].iloc[0])
    ctrl = model_color(model, control=True)
    ax.fill_between(cmp[x], cmp["random_min"] * scale, cmp["random_max"] * scale, color=ctrl,
                    alpha=0.3, label=f"{label} (min–max over init seeds)")
    ax.plot(cmp[x], cmp["random_mean"] * scale, color=ctrl, ls="-.", lw=1.0)
    if floor and "floor" in cmp and cmp["floor"].notna().any():
        level = float(cmp["floor"].iloc[0])
        if retention:
            level /= float(cmp["full"].iloc[0])
        ax.axhline(level, color=model_color(model, control=False), ls=":", lw=1.2,
                   label=f"{model}: embedding-only floor")
    return ax


def ours_vs_paper(ours: pd.DataFrame, paper: pd.DataFrame, *, x: str = "rel_compute_paper",
                  y: str = "retention", hue: str = "model", paper_x: str = "x",
                  paper_y: str | None = None, paper_hue: str = "series", z: float = 2.0,
                  ax: Axes | None = None, logx: bool = True, ylabel: str | None = None,
                  title: str | None = None, paper_alpha: float = 0.7,
                  floors: Mapping[str, float] | None = None, style: str | None = None,
                  paper_legend: str = "each") -> Axes:
    """Our curves (solid, ± z SE error bars where our side has a spread) over the published
    ones (dashed, labelled :data:`PAPER_LABEL`) on one axis; every curve in its model's
    colour (:mod:`slimlib.book.palette`), one line per ``hue`` (and ``style``) value.

    Args:
        ours: one row per curve and point: ``[hue, x, y]`` plus, for error bars, what
            :func:`slimlib.book.comparison.standard_error` reads (``se``, ``std + n_seeds`` or
            ``sd + n``).
        paper: published rows ``[paper_hue, paper_x, paper_y]`` (e.g.
            :func:`slimlib.book.reference.posthoc`, whose ``x`` is in the paper's FLOP convention).
        x: our x column; use ``"rel_compute_paper"``
            (:func:`slimlib.book.comparison.with_paper_axis`) so both sides share one convention.
        floors: ``{hue value: embedding-only floor}`` (in ``y``'s units), each drawn as a
            dotted horizontal line in its curve's colour.
        style: a column whose values separate kinds of curve of one ``hue`` value (e.g. the
            FLOP convention): same colour, other line style.
        paper_legend: ``"each"``: one legend entry per published curve; ``"one"``: a single
            entry for all of them (a compact legend where the paper has many models).
    """
    from slimlib.book.comparison import standard_error

    paper_y = paper_y or y
    check_columns(ours, [hue, x, y, *([style] if style else [])], "ours_vs_paper (ours)")
    check_columns(paper, [paper_hue, paper_x, paper_y], "ours_vs_paper (paper)")
    ax = _new_ax(ax)
    se, _ = standard_error(ours)
    data = ours.assign(_se=se.fillna(0.0).to_numpy())
    floors = dict(floors or {})
    unknown = sorted(set(map(str, floors)) - set(map(str, data[hue].unique())))
    if unknown:
        raise ValueError(f"floors for {unknown}, which are not curves of {hue!r}")
    if paper_legend not in ("each", "one"):
        raise ValueError(f"paper_legend must be 'each' or 'one', got {paper_legend!r}")
    for label, kind, part in palette.curves(data, hue, style):
        part = part.sort_values(x)
        name = part[hue].iloc[0]
        kw = palette.ours_style(str(name), kind, palette.style_kinds(data, style), lw=1.6)
        if (part["_se"] > 0).any():
            line = ax.errorbar(part[x], part[y], yerr=z * part["_se"], capsize=2,
                               label=f"{label} (this build, ± {z:g} SE)", **kw)[0]
        else:
            (line,) = ax.plot(part[x], part[y], label=f"{label} (this build)", **kw)
        if name in floors:  # several floors: one legend entry for all (compact legend)
            ax.axhline(floors[name], color=line.get_color(), ls=":", lw=1.1, label=(
                f"{name}: embedding-only floor" if len(floors) == 1 else "_floor"))
    if len(floors) > 1:
        ax.plot([], [], color="0.3", ls=":", label="embedding-only floors (dotted, model colour)")
    n_paper = paper[paper_hue].nunique()
    styles = palette.paper_styles(sorted(paper[paper_hue].unique()))
    for name, part in paper.groupby(paper_hue, sort=True):
        part = part.sort_values(paper_x)
        ax.plot(part[paper_x].astype(float), part[paper_y].astype(float), lw=1.0,
                alpha=paper_alpha, **styles[name],
                label=f"{name} — {PAPER_LABEL}" if paper_legend == "each" else "_paper")
    if paper_legend == "one" and n_paper:  # one grey proxy entry for all published curves
        ax.plot([], [], color="0.45", ls="--", marker="s", ms=2,
                label=f"{n_paper} published curves (dashed, one colour per model) — "
                      f"{PAPER_LABEL}")
    return _finish(ax, xlabel=_AXIS_LABELS.get(x, x.replace("_", " ")), xlabel_size=8,
                   ylabel=ylabel or y.replace("_", " "), logx=logx, unit_line=y == "retention",
                   title=title, legend_size=6)


def difference_plot(diff: pd.DataFrame, *, on: str = "width", hue: str | None = None,
                    ax: Axes | None = None, logx: bool = True, ylabel: str = "ours − paper",
                    title: str | None = None, style: str | None = None) -> Axes:
    """Draw :func:`slimlib.book.comparison.paper_difference` output: ``ours − paper`` per point
    with its interval (where our side has one) and the zero line; one line per ``hue`` (its
    model's colour) and ``style`` (line style) value, so separate series are never joined.

    Raises:
        ValueError: two rows of one series share an ``on`` value (the series is not
            identified by ``hue`` and ``style``; name the column that separates them).
    """
    check_columns(diff, [on, "difference", "diff_lo", "diff_hi",
                         *[c for c in (hue, style) if c]], "difference_plot")
    ax = _new_ax(ax)
    data = diff.assign(_all="ours − paper")
    for label, kind, part in palette.curves(data, hue or "_all", style):
        if part[on].duplicated().any():
            raise ValueError(f"series {label!r} has several rows per {on!r} value; pass the "
                             "column that separates them as hue= or style=")
        part = part.sort_values(on)
        lo = (part["difference"] - part["diff_lo"]).fillna(0.0)
        hi = (part["diff_hi"] - part["difference"]).fillna(0.0)
        ax.errorbar(part[on].astype(float), part["difference"], yerr=[lo, hi], capsize=2,
                    label=label, **palette.ours_style(str(part[hue or "_all"].iloc[0]),
                                                      kind, palette.style_kinds(data, style)))
    ax.axhline(0.0, color="0.4", lw=0.8)
    return _finish(ax, xlabel=_AXIS_LABELS.get(on, on.replace("_", " ")), xlabel_size=8,
                   ylabel=ylabel, logx=logx, title=title, legend_size=6)


def fig1b(ours: Mapping[str, pd.DataFrame], paper: pd.DataFrame | None = None, *,
          refs: pd.DataFrame | None = None, ax: Axes | None = None,
          ylabel: str = "accuracy (macro)") -> Axes:
    """Fig. 1b: absolute accuracy per 10 % compute bin on the same RS data.

    Args:
        ours: label (or ``(label, dataset)``: one curve per dataset, never pooled across
            numbers of classes) -> :func:`bin_stats` output of ``value`` (``bin, mean, lo,
            hi``).
        paper: :func:`slimlib.book.reference.fig1_bins` ``("fig1b")`` rows (``series, bin, mean``).
        refs: :func:`slimlib.book.reference.fig1_reference_lines` (horizontal lines).
    """
    ax = _new_ax(ax, (8.0, 5.0))
    _draw_bins(ax, ours, "fig1b")
    if paper is not None and len(paper):
        check_columns(paper, ["series", "bin", "mean"], "fig1b (paper)")
        styles = palette.paper_styles(sorted(paper["series"].unique()))
        for name, part in paper.groupby("series", sort=True):
            part = part.sort_values("bin")
            ax.plot(part["bin"], part["mean"], label=f"{name} — {PAPER_LABEL}",
                    **styles[name])
    if refs is not None:
        for _, r in refs.iterrows():
            ax.axhline(float(r["y"]), color=model_color(str(r["series"])), ls=(0, (1, 3)),
                       lw=1.0, label=f"{r['series']} at 100 % — {PAPER_LABEL}")
    ax.set_xlabel(_AXIS_LABELS["bin"])
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return legend(ax, fontsize=6)
