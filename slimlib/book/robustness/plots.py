"""Figures of chapter 10 (robustness). Each function draws on a given or new axes and
returns it; bands are the intervals the tables print (± 2 SD over seeds or draws, or
bootstrap percentiles), labelled in the legend."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["curves", "classwise_bars", "dynamics_grid"]


def _axes(ax: Any, figsize: tuple[float, float] = (6.4, 4.0)) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def curves(frame: pd.DataFrame, *, x: str, y: str, hue: str, lo: str | None = None,
           hi: str | None = None, ax: Any = None, logx: bool = True, title: str = "",
           ylabel: str | None = None, band_label: str = "± 2 SD over seeds",
           linestyle: str = "-") -> Any:
    """One line per ``hue`` value of ``y`` against ``x``; a shaded band from ``lo`` to ``hi``
    where given."""
    ax = _axes(ax)
    for i, (key, part) in enumerate(frame.sort_values(x).groupby(hue, sort=True)):
        line, = ax.plot(part[x], part[y], marker="o", ms=3, ls=linestyle, label=str(key))
        if lo is not None and hi is not None:
            ax.fill_between(part[x], part[lo], part[hi], color=line.get_color(), alpha=0.15,
                            label=band_label if i == 0 else None)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("relative compute" if "compute" in x else x)
    ax.set_ylabel(ylabel or y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def classwise_bars(table: pd.DataFrame, *, width_col: str = "width", value: str = "ap",
                   ax: Any = None, title: str = "") -> Any:
    """Per-class ``value`` at each width as grouped bars (classes sorted by the full-width
    value; error bars from ``<value>_lo`` / ``<value>_hi`` when present). The controls, when
    the table has them: ``random_<value>`` (the random-init network at the same width) as a
    black tick on each bar, ``prevalence`` (the AP of a constant score) as a red cross."""
    ax = _axes(ax, (9, 3.8))
    widths = sorted(table[width_col].unique())
    full = table[np.isclose(table[width_col], max(widths))].set_index("class")[value]
    classes = list(full.sort_values().index)
    step = 0.8 / len(widths)
    for i, w in enumerate(widths):
        part = table[np.isclose(table[width_col], w)].set_index("class").loc[classes]
        pos = np.arange(len(classes)) + (i - (len(widths) - 1) / 2) * step
        err = None
        if f"{value}_lo" in part:
            err = np.vstack([part[value] - part[f"{value}_lo"],
                             part[f"{value}_hi"] - part[value]]).clip(min=0)
        ax.bar(pos, part[value], width=step, yerr=err, capsize=1.5, label=f"s = {w:g}",
               error_kw={"lw": 0.6})
        if f"random_{value}" in part:
            ax.scatter(pos, part[f"random_{value}"], marker="_", color="k", s=25, lw=1.2,
                       zorder=3, label="random init, same width" if i == 0 else None)
    if "prevalence" in table and value == "ap":
        prev = table[np.isclose(table[width_col], max(widths))].set_index("class")
        ax.scatter(np.arange(len(classes)), prev.loc[classes, "prevalence"], marker="x",
                   color="tab:red", s=14, lw=0.8, zorder=3, label="chance (class prevalence)")
    ax.set_xticks(np.arange(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(value)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    # outside the axes, on the right: the bars reach 1.0, so a legend inside covers data
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def dynamics_grid(rows: pd.DataFrame, *, title: str = "") -> Any:
    """One panel per model: k-NN accuracy (seed mean) against relative compute, one line per
    snapshot step (the lightest line is step 0, the random init)."""
    bases = list(dict.fromkeys(rows["base"]))
    fig, axes = plt.subplots(1, len(bases), figsize=(3.4 * len(bases), 3.4), squeeze=False,
                             sharey=True)
    for ax, base in zip(axes[0], bases, strict=True):
        part = rows[rows["base"] == base]
        steps = sorted(part["step"].unique())
        cmap = plt.get_cmap("viridis")
        for j, step in enumerate(steps):
            s = part[part["step"] == step].groupby("width").agg(
                x=("rel_compute", "mean"), y=("value", "mean")).sort_values("x")
            ax.plot(s["x"], s["y"], marker="o", ms=2.5,
                    color=cmap(j / max(1, len(steps) - 1)),
                    label=f"step {step}" + (" (init)" if step == 0 else ""))
        ax.set_xscale("log")
        ax.set_title(base, fontsize=8)
        ax.set_xlabel("relative compute")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5)
    axes[0][0].set_ylabel("k-NN accuracy (macro)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
