"""Figures and tables a reader can read (#22 item 7): one colour per model on every figure,
one line per series (never joined into a sawtooth), legends outside the axes, and tables
shown compact with "—" (never NaN, never a cut cell) and written whole as CSV."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from slimlib.book import (
    palette,
    plot_tables,
    plotting,
    reference,  # noqa: E402
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _curve(model: str, kind: str | None = None, shift: float = 0.0) -> pd.DataFrame:
    rows = pd.DataFrame({"model": model, "width": [0.1, 0.5, 1.0],
                         "rel_compute": [0.2, 0.6, 1.0], "rel_compute_paper": [0.2, 0.6, 1.0],
                         "retention": np.array([0.7, 0.9, 1.0]) - shift,
                         "mean": np.array([0.6, 0.8, 0.9]) - shift})
    return rows if kind is None else rows.assign(kind=kind)


def _colors(ax) -> dict[str, str]:
    return {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def test_one_colour_per_model_across_calls_and_figures():
    one = plotting.retention_vs_compute(pd.concat([_curve("galileo-nano"),
                                                   _curve("rs-mae-tiny", shift=0.1)]))
    # another figure, other labels and another model first: the model keeps its colour
    table = pd.concat([_curve("cv-moco-tiny"), _curve("galileo-nano", shift=0.05)])
    two = plotting.ours_vs_paper(table.assign(run=table["model"] + " @ eurosat-rgb"),
                                 reference.posthoc().query("dataset == 'm-eurosat'"),
                                 hue="run")
    a, b = _colors(one), _colors(two)
    assert a["galileo-nano"] == b["galileo-nano @ eurosat-rgb (this build)"] \
        == palette.MODEL_COLORS["galileo-nano"]
    assert a["rs-mae-tiny"] != a["galileo-nano"]
    # the paper's models have their own colours, distinct from each other and from ours
    paper = {k: v for k, v in b.items() if plotting.PAPER_LABEL in k}
    assert len(set(paper.values())) == len(paper) == 10
    assert not set(paper.values()) & {a["galileo-nano"], a["rs-mae-tiny"]}
    assert palette.model_color("DOFA (base)") == palette.model_color("dofa-base")


def test_a_control_is_a_lighter_variant_of_its_models_colour():
    own = np.array(matplotlib.colors.to_rgb(palette.model_color("galileo-nano")))
    ctrl = np.array(matplotlib.colors.to_rgb(palette.model_color("galileo-nano [random init 2]")))
    assert palette.model_color("galileo-nano", control=True) == to_hex(ctrl)
    np.testing.assert_allclose(ctrl, own + (1 - own) * palette.CONTROL_LIGHTEN, atol=1 / 255)
    assert palette.model_of("galileo-nano-rgb (knn)") == "galileo-nano-rgb"
    assert palette.model_of("RS FM (Galileo-nano)") == "galileo-nano"
    assert palette.model_of("attention only") is None
    # a label naming no model still keeps one colour from call to call
    assert palette.model_color("attention only") == palette.model_color("attention only")


def test_series_are_never_joined_across_models_or_kinds():
    # two models x two conventions: four lines, each sorted by x, never one zig-zag
    table = pd.concat([_curve(m, kind=k, shift=i * 0.1 + j * 0.02)
                       for i, m in enumerate(("galileo-nano", "rs-mae-tiny"))
                       for j, k in enumerate(("attention counted", "paper convention"))])
    ax = plotting.retention_vs_compute(table, hue="model", style="kind")
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(lines) == 4
    for line in lines:
        assert np.all(np.diff(line.get_xdata()) > 0)
    colours = {line.get_label(): line.get_color() for line in lines}
    styles = {line.get_label(): line.get_linestyle() for line in lines}
    assert colours["galileo-nano, attention counted"] == colours["galileo-nano, paper convention"]
    assert styles["galileo-nano, attention counted"] != styles["galileo-nano, paper convention"]
    diff = table.assign(difference=table["retention"] - 1, diff_lo=np.nan, diff_hi=np.nan)
    ax2 = plotting.difference_plot(diff, hue="model", style="kind")
    assert len(ax2.containers) == 4
    for container in ax2.containers:
        assert np.all(np.diff(np.asarray(container.lines[0].get_xdata(), dtype=float)) > 0)
    with pytest.raises(ValueError, match="several rows per"):
        plotting.difference_plot(diff, hue="kind")  # two models in one series: refused


def test_legends_sit_outside_the_axes():
    paper = reference.posthoc().query("dataset == 'm-eurosat' and protocol == 'knn'")
    ax = plotting.ours_vs_paper(_curve("galileo-nano"), paper)
    fig = ax.figure
    fig.canvas.draw()
    box, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert box.x0 >= axes.x1  # eleven entries: on the right, covering nothing
    ax3 = plotting.retention_vs_compute(pd.concat([_curve("galileo-nano"),
                                                   _curve("rs-mae-tiny", shift=0.1)]))
    ax3.figure.canvas.draw()
    assert ax3.get_legend().get_window_extent().x0 >= ax3.get_window_extent().x1  # right
    ax2 = plotting.ours_vs_paper(_curve("galileo-nano"), paper, paper_legend="one")
    texts = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert len(texts) == 2 and "10 published curves" in texts[1]
    ax2.figure.canvas.draw()  # two long labels: below the axes and clear of the x label
    label = ax2.xaxis.label.get_window_extent()
    assert ax2.get_legend().get_window_extent().y1 <= label.y0


def test_fig1b_draws_one_curve_per_dataset():
    def stats(v):
        return plotting.bin_stats(pd.DataFrame({"rel_compute": [0.05, 1.0], "value": v}),
                                  y="value")
    ax = plotting.fig1b({("RS FM (Galileo-nano)", "eurosat-rgb"): stats([0.8, 0.9]),
                         ("RS FM (Galileo-nano)", "ucmerced"): stats([0.3, 0.6])})
    lines = {line.get_label(): line for line in ax.get_lines()}
    a = lines["RS FM (Galileo-nano), eurosat-rgb (this build)"]
    b = lines["RS FM (Galileo-nano), ucmerced (this build)"]
    np.testing.assert_allclose(a.get_ydata(), [0.8, 0.9])
    np.testing.assert_allclose(b.get_ydata(), [0.3, 0.6])
    assert a.get_color() == b.get_color() and a.get_linestyle() != b.get_linestyle()


def test_compact_view_has_no_nan_and_notes_why(tmp_path):
    frame = pd.DataFrame({"model": ["galileo-nano", "rs-mae-tiny"], "value": [0.51234, np.nan],
                          "never": [np.nan, np.nan], "why": ["x" * 80, "short"]})
    view, notes = plot_tables.compact_view(frame, missing={"value": "no control run"})
    assert not view.isna().any().any()
    assert list(view.columns) == ["model", "value", "why"]  # the empty column is dropped
    assert view.loc[1, "value"] == plot_tables.DASH and view.loc[0, "value"] == "0.512"
    assert view.loc[0, "why"] == "x" * 80  # never cut
    assert any("never" in n for n in notes) and any("no control run" in n for n in notes)
    small, _ = plot_tables.compact_view(frame, columns=["model", "value"])
    assert list(small.columns) == ["model", "value"]
    with pytest.raises(ValueError, match="missing"):
        plot_tables.compact_view(frame, columns=["nope"])
    path = plot_tables.write_csv(frame, "t", directory=tmp_path)
    back = pd.read_csv(path)
    assert list(back.columns) == list(frame.columns) and len(back) == 2  # the full table
    assert back.loc[0, "why"] == "x" * 80
    plotting.show_table(frame.set_index("model"), "u", directory=tmp_path)
    assert pd.read_csv(tmp_path / "u.csv")["model"].tolist() == ["galileo-nano", "rs-mae-tiny"]
    with pytest.raises(ValueError, match="plain file name"):
        plot_tables.write_csv(frame, "../x", directory=tmp_path)


def test_width_table_cells_stay_apart():
    """Chapter 2's "What one width keeps": d and heads are separate, padded cells (the
    book's theme pads tables of class "dataframe"; an unstyled table printed "3846")."""
    frame = pd.DataFrame({"width s": [1.0, 0.25], "d": [384, 384], "heads": [6, 6],
                          "softmax scale": [0.125, 0.25]})
    view, notes = plot_tables.compact_view(frame, precision=4)
    html = plot_tables.table_html(view)
    assert 'class="dataframe slimlib-table"' in html and "padding" in html and not notes
    assert '<td><span class="nw">384</span></td>' in html and "3846" not in html
    assert '<td><span class="nw">6</span></td>' in html
    long = plot_tables.table_html(pd.DataFrame({"why": ["x " * 40], "m": ["a<b"]}))
    assert '<span class="nw">x x' not in long and "a&lt;b" in long  # long text wraps; escaped
    assert view.loc[1, "width s"] == "0.2500" and view.loc[0, "d"] == "384"


def test_classwise_bars_legend_sits_outside_the_bars():
    from slimlib.book.robustness import plots as rplot

    table = pd.DataFrame([
        {"class": c, "width": w, "ap": ap, "random_ap": 0.5, "prevalence": 0.3}
        for c, w, ap in [("a", 0.1, 0.95), ("a", 1.0, 1.0), ("b", 0.1, 0.9), ("b", 1.0, 0.99)]])
    fig, ax = plt.subplots()
    rplot.classwise_bars(table, ax=ax)
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


def test_published_curves_of_one_model_are_told_apart_and_groups_have_own_colours():
    ax = plotting.fig1a({}, reference.load().query("section == 'fig1a'"))
    lines = {line.get_label(): line for line in ax.get_lines()}
    ten = lines[f"CV MAE @ ImageNet-10 — {plotting.PAPER_LABEL}"]
    hundred = lines[f"CV MAE @ ImageNet-100 — {plotting.PAPER_LABEL}"]
    assert ten.get_color() == hundred.get_color()  # one model, one colour
    assert ten.get_linestyle() != hundred.get_linestyle() or \
        ten.get_marker() != hundred.get_marker()
    groups = {palette.model_color(g) for g in ("RS tiny models", "CV tiny models (miniatures)",
                                               "RS FMs @ m-eurosat")}
    assert len(groups) == 3 and not groups & set(palette.MODEL_COLORS.values())
