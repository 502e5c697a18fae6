"""One colour per model on every page of the book, and one line style per kind of curve.

:func:`model_color` maps a model (a registry name, a published series such as
``"DOFA (base)"``, or any curve label that contains one, e.g. ``"galileo-nano (knn)"``) to
its colour, the same on every figure; a random-init control of the model
(``"galileo-nano [random init 0]"``, or ``control=True``) gets a lighter variant of that
colour. :func:`kind_style` gives the line style and marker of a *kind* of curve (a probe,
a FLOP convention, a dataset, a slimmed layer type) so that colour can stay the model's.
:func:`series_style` combines both for one curve label. The drawing helpers of
:mod:`slimlib.book.plotting` use these by default.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Hashable

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import offset_copy

from slimlib.book.reference import SERIES_TO_MODEL

__all__ = ["MODEL_COLORS", "PAPER_ALIASES", "model_of", "model_color", "kind_style",
           "series_style", "CONTROL_LIGHTEN", "GROUP_COLORS", "paper_styles", "legend", "curves",
           "ours_style", "paper_style", "style_kinds", "short_log_ticks"]

#: Registry model -> colour. This build's own models take the strong tab10 colours; the
#: paper's models (built here only with random weights, drawn mostly as published curves)
#: take the tab20b/tab20c colours, so ours and theirs never share a colour.
MODEL_COLORS: dict[str, str] = {
    "galileo-nano": "#1f77b4", "galileo-nano-rgb": "#ff7f0e",
    "galileo-nano-p8": "#17becf", "galileo-nano-rgb-p8": "#bcbd22",
    "rs-moco-tiny": "#2ca02c", "rs-moco-tiny-slimmable": "#d62728",
    "rs-mae-tiny": "#9467bd", "rs-mae-tiny-slimmable": "#8c564b",
    "cv-moco-tiny": "#e377c2", "cv-mae-tiny": "#7f7f7f",
    "ssl4eo-vits16-moco": "#393b79", "ssl4eo-vits16-dino": "#5254a3",
    "ssl4eo-vits16-mae": "#6b6ecf", "ssl4eo-vits16-fgmae": "#9c9ede",
    "softcon-vits14": "#637939", "softcon-vitb14": "#8ca252",
    "dofa-base": "#b5cf6b", "dofa-large": "#8c6d31",
    "panopticon-vitb14": "#bd9e39", "copernicusfm-base": "#e7ba52",
    "scalemae-large": "#843c39", "terramind-v1-base": "#ad494a",
    "terramind-v1-large": "#d6616b", "prithvi-eo-2-300m": "#7b4173",
    "prithvi-eo-2-600m": "#a55194", "mae-vitb16-imagenet": "#8c2d04",
    "dinov2-vitb14": "#01665e",
}

#: Published series (``slimlib.book.reference``) -> the registry model they are: the reference's
#: own :data:`~slimlib.book.reference.SERIES_TO_MODEL` plus the series it does not map to a model.
PAPER_ALIASES: dict[str, str] = {
    **SERIES_TO_MODEL,
    "SSL4EO ViT-S (MAE)": "ssl4eo-vits16-mae", "SoftCon (ViT-S)": "softcon-vits14",
    "SoftCon (ViT-B)": "softcon-vitb14", "ScaleMAE": "scalemae-large",
    "CV MAE": "mae-vitb16-imagenet", "CV DINOv2": "dinov2-vitb14",
}

#: Curves of a group of models (the book's pooled curves), by a phrase of their label.
GROUP_COLORS: dict[str, str] = {
    "rs fms": "#e6ab02", "rs tiny models": "#66a61e", "cv tiny models": "#e7298a",
    "moco vit-b": "#1b9e77", "mae vit-b": "#d95f02",
}

#: Colours of other labels that name no model (a stable hash picks one, so a label keeps its
#: colour from page to page); none of them is a model's or a group's colour.
_OTHER = ("#000000", "#4d4d4d", "#a6761d", "#7570b3", "#b2182b", "#2166ac")

#: How much of the way to white a random-init control's colour is moved.
CONTROL_LIGHTEN = 0.5

_CONTROL = re.compile(r"\[random init -?\d+\]|random init|random-init", re.IGNORECASE)

#: Line style and marker per kind, in order of first use; paper curves are dashed ("--"),
#: so no kind of ours uses that style.
_KIND_STYLES = (("-", "o"), ("-.", "^"), (":", "D"), ((0, (6, 2, 1, 2, 1, 2)), "v"),
                ((0, (1, 1)), "s"), ("-", "P"), ("-.", "X"))
_KNOWN_KINDS = {"knn": 0, "linear": 1, "attention counted": 0, "paper convention": 1,
                "no attention products": 2, "attention products counted": 0,
                "paper convention (no attention products, norms counted)": 1,
                "no attention products, norms not counted": 2,
                "both": 0, "attention only": 1, "FFN only": 2,
                "first": 0, "random": 1, "last": 2, "regular": 0, "slimmable": 1}


def model_of(label: str) -> str | None:
    """The registry model a curve label is about: the longest registry name or published
    series name it contains (case-insensitive); ``None`` when it names none."""
    text = str(label).lower()
    for alias, name in sorted(PAPER_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if alias.lower() in text:
            return name
    hits = [name for name in MODEL_COLORS if name in text]
    if "galileo-nano" not in hits and "galileo" in text:
        hits.append("galileo-nano" if "rgb" not in text else "galileo-nano-rgb")
    return max(hits, key=len) if hits else None


def _lighten(color: str, amount: float) -> str:
    r, g, b = to_rgb(color)
    return to_hex((r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount))


def model_color(label: str, *, control: bool | None = None) -> str:
    """The colour of ``label``'s model (:func:`model_of`), the same on every figure.

    Args:
        label: a registry name, a published series name or a curve label containing one.
            A label that names no model gets a fixed colour from a separate set (chosen by
            a hash of the label, so it too is stable across pages).
        control: draw the model's random-init control: the model's colour moved
            :data:`CONTROL_LIGHTEN` of the way to white. ``None``: decided from the label
            (``"[random init N]"``, ``"random init"``).
    """
    model = model_of(label)
    groups = [c for phrase, c in GROUP_COLORS.items() if phrase in str(label).lower()]
    if model is not None:
        color = MODEL_COLORS[model]
    elif groups:
        color = groups[0]
    else:
        color = _OTHER[zlib.crc32(str(label).encode()) % len(_OTHER)]
    if control is None:
        control = bool(_CONTROL.search(str(label)))
    return _lighten(color, CONTROL_LIGHTEN) if control else color


def kind_style(kind: Hashable, *, index: int | None = None) -> dict:
    """Line style and marker of a kind of curve (``"knn"``/``"linear"``, a FLOP convention,
    a layer type, an order, a dataset): known kinds have fixed styles, others take
    ``index`` (their position among the kinds of the figure) or a stable hash."""
    index = _KNOWN_KINDS.get(str(kind), index)
    if index is None:
        index = zlib.crc32(str(kind).encode()) % len(_KIND_STYLES)
    ls, marker = _KIND_STYLES[index % len(_KIND_STYLES)]
    return {"ls": ls, "marker": marker}


def series_style(label: str, kind: Hashable | None = None, *,
                 kind_index: int | None = None) -> dict:
    """``color``, ``ls`` and ``marker`` of one curve of ours: colour from the model named in
    ``label`` (lighter for a random-init control), style from ``kind`` (solid with circles
    when there is none)."""
    style = {"ls": "-", "marker": "o"} if kind is None else kind_style(kind, index=kind_index)
    return {"color": model_color(label), **style}


def short_log_ticks(axis) -> None:
    """Minor tick labels of a log axis that never run together: none where the axis spans a
    decade or more (its powers of ten are labelled), else 2, 3 and 5 times a power of ten in
    plain numbers ("0.3", not "3×10⁻¹")."""
    lo, hi = sorted(axis.get_view_interval())
    if lo <= 0 or math.log10(hi / lo) >= 1.05:
        axis.set_minor_formatter(NullFormatter())
        return

    def label(value: float, _pos) -> str:
        lead = round(value / 10 ** math.floor(math.log10(value)), 6)
        return f"{value:g}" if lead in (2.0, 3.0, 5.0) else ""

    axis.set_minor_formatter(FuncFormatter(label))


def legend(ax: Axes, *, fontsize: float = 7, outside: bool = True,
           below: bool | None = None, ncol: int = 1) -> Axes:
    """The legend of ``ax`` without duplicate labels, outside the axes so it never covers
    data: on the right, or below the axes and its x label where labels are long
    (``below=None``: a label over 45 characters and at most 8 entries) so side-by-side
    panels keep their width (``ncol`` columns there). ``outside=False``: the best place
    inside."""
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for handle, label in zip(handles, labels, strict=True):
        if not label.startswith("_"):
            seen.setdefault(label, handle)
    if not seen:
        return ax
    if ax.get_xscale() == "log":
        short_log_ticks(ax.xaxis)
    if not outside:
        ax.legend(seen.values(), seen.keys(), fontsize=fontsize)
        return ax
    if below is None:
        below = max(map(len, seen)) > 45 and len(seen) <= 8
    if below:  # anchored a fixed distance under the axes: clear of tick labels and x label
        under = offset_copy(ax.transAxes, fig=ax.figure, y=-40, units="points")
        ax.legend(seen.values(), seen.keys(), fontsize=fontsize, loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), bbox_transform=under, borderaxespad=0.0,
                  frameon=False, ncol=ncol)
    else:
        ax.legend(seen.values(), seen.keys(), fontsize=fontsize, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                  ncol=2 if len(seen) > 16 else 1)
    return ax


def curves(table: pd.DataFrame, hue: str, style: str | None):
    """``(label, kind, rows)`` per curve: one per ``hue`` (and ``style``) value, rows sorted
    later by x. The label joins both values so the legend names each line."""
    if style is None:
        for name, part in table.groupby(hue, sort=True):
            yield str(name), None, part
        return
    for (name, kind), part in table.groupby([hue, style], sort=True):
        yield f"{name}, {kind}", kind, part


def ours_style(label: str, kind=None, kinds: list | None = None, **extra) -> dict:
    """Line keywords of one curve of ours: model colour, kind style (a kind not known to
    :func:`slimlib.book.palette.kind_style` takes its position in ``kinds``), small markers."""
    index = kinds.index(kind) if kinds and kind in kinds else None
    return {**series_style(label, kind, kind_index=index), "ms": 3, **extra}


def style_kinds(table: pd.DataFrame, style: str | None) -> list | None:
    """The values of a ``style`` column in drawing order (``None`` without one)."""
    return sorted(table[style].dropna().unique(), key=str) if style else None


def paper_style(name: str, repeat: int = 0) -> dict:
    """Line keywords of one published curve: the model's colour, dashed, square markers; the
    ``repeat``-th other curve of the same model (e.g. CV MAE on ImageNet-10 and -100) takes
    another dash pattern and marker."""
    dashes = ("--", (0, (1.5, 1.5)), (0, (7, 2, 1.5, 2)), (0, (10, 3)))
    return {"color": model_color(str(name)), "ls": dashes[repeat % len(dashes)],
            "marker": "sDv^"[repeat % 4], "ms": 2}


def paper_styles(names) -> dict:
    """:func:`paper_style` of each published curve name, repeats of one colour told apart."""
    seen: dict[str, int] = {}
    out = {}
    for name in names:
        color = model_color(str(name))
        out[name] = paper_style(str(name), seen.get(color, 0))
        seen[color] = seen.get(color, 0) + 1
    return out
