"""Tests of the book's figure helpers and profiles (fast, no models)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from slimlib.book import (
    plotting,
    profiles,
    reference,  # noqa: E402
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _runs() -> pd.DataFrame:
    """Two models, two seeds, four widths with known values."""
    rows = []
    for model, scale in (("a", 1.0), ("b", 0.5)):
        for seed in (0, 1):
            for width, rc, value in ((0.01, 0.05, 0.6), (0.1, 0.17, 0.7), (0.5, 0.55, 0.8),
                                     (1.0, 1.0, 0.9)):
                rows.append({"model": model, "dataset": "d", "protocol": "knn",
                             "metric": "accuracy_macro", "seed": seed, "width": width,
                             "rel_compute": rc, "value": scale * value + 0.01 * seed,
                             "parts": "attn+ffn", "order": "first"})
    return pd.DataFrame(rows)


def test_compute_bins_are_decimal_floors():
    got = plotting.compute_bins([0.0, 0.05, 0.1, 0.3, 0.29999999999, 0.99, 1.0])
    np.testing.assert_allclose(got, [0.0, 0.0, 0.1, 0.3, 0.3, 0.9, 1.0])
    with pytest.raises(ValueError, match="finite"):
        plotting.compute_bins([-0.1])


def test_bin_stats_match_hand_computation():
    frame = pd.DataFrame({"rel_compute": [0.02, 0.07, 0.08, 0.15, 1.0],
                          "retention": [0.8, 0.9, 1.0, 0.95, 1.0]})
    stats = plotting.bin_stats(frame).set_index("bin")
    vals = [0.8, 0.9, 1.0]
    mean = sum(vals) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / 2)
    assert stats.loc[0.0, "n"] == 3
    assert stats.loc[0.0, "mean"] == pytest.approx(mean)
    assert stats.loc[0.0, "sd"] == pytest.approx(sd)
    assert stats.loc[0.0, "lo"] == pytest.approx(mean - 2 * sd)
    assert stats.loc[0.0, "hi"] == pytest.approx(mean + 2 * sd)
    assert stats.loc[0.1, "sd"] == 0.0 and stats.loc[0.1, "mean"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="missing"):
        plotting.bin_stats(frame.rename(columns={"retention": "r"}))


def test_per_run_retention_divides_by_same_seed_full_width():
    runs = plotting.per_run_retention(_runs())
    row = runs[(runs.model == "b") & (runs.seed == 1) & (runs.width == 0.01)].iloc[0]
    assert row["retention"] == pytest.approx((0.5 * 0.6 + 0.01) / (0.5 * 0.9 + 0.01))
    assert np.allclose(runs[runs.width == 1.0]["retention"], 1.0)


def test_fig1a_draws_our_bins_and_labelled_paper_curves():
    stats = plotting.bin_stats(plotting.per_run_retention(_runs()))
    paper = reference.load().query("section == 'fig1a'")
    ax = plotting.fig1a({"ours": stats}, paper)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ours (this build)" in labels
    paper_lines = [lab for lab in labels if plotting.PAPER_LABEL in lab]
    assert len(paper_lines) == paper["series"].nunique() == 4
    ours_line = ax.get_lines()[labels.index("ours (this build)")]
    np.testing.assert_allclose(ours_line.get_ydata(), stats.sort_values("bin")["mean"])
    rs = [line for line in ax.get_lines() if line.get_label().startswith("RS FMs")][0]
    assert rs.get_ydata()[0] == pytest.approx(0.8594)  # the paper's first RS bin mean
    # one band per our curve plus one per paper series
    assert len(ax.collections) == 1 + 4


def test_paper_fig_parts_splits_means_and_bands():
    paper = reference.load().query("section == 'fig1a'")
    mean, bands = plotting.paper_fig_parts(paper)
    assert set(mean["series"]) == set(bands)
    rs = bands["RS FMs @ 4 RS datasets (avg.)"].set_index("x")
    assert rs.loc[0.0, "lo"] == pytest.approx(0.6697)
    assert rs.loc[0.0, "hi"] == pytest.approx(1.0491)
    assert (rs["lo"] <= rs["hi"]).all()


def test_retention_and_metric_curves_plot_the_table():
    runs = _runs()
    ret = runs.groupby(["model", "width"], as_index=False).agg(
        rel_compute=("rel_compute", "mean"), retention=("value", "mean"))
    ax = plotting.retention_vs_compute(ret)
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] \
        == ["a", "b"]
    a = ax.get_lines()[0]
    np.testing.assert_allclose(a.get_xdata(), [0.05, 0.17, 0.55, 1.0])
    assert ax.get_xscale() == "log"
    feats = runs.assign(protocol="features", metric="evr_slope")
    ax2 = plotting.metric_vs_compute(feats, "evr_slope")
    assert len(ax2.get_lines()) == 2
    with pytest.raises(ValueError, match="no rows"):
        plotting.metric_vs_compute(feats, "participation_ratio")


def test_band_over_seeds_spans_min_max():
    ax = plotting.band_over_seeds(_runs(), hue="model")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [0.605, 0.705, 0.805, 0.905])
    path = ax.collections[0].get_paths()[0].vertices
    assert path[:, 1].min() == pytest.approx(0.6) and path[:, 1].max() == pytest.approx(0.91)


def test_paper_overlay_labels_every_series():
    paper = reference.posthoc().query("dataset == 'm-eurosat' and protocol == 'knn'")
    ax = plotting.paper_overlay(paper)
    assert len(ax.get_lines()) == paper["series"].nunique()
    assert all(plotting.PAPER_LABEL in line.get_label() for line in ax.get_lines())


def test_compute_curves_and_architecture_diagram():
    t = pd.DataFrame({"width": [0.1, 0.5, 1.0], "rel_compute": [0.2, 0.6, 1.0]})
    ax = plotting.compute_curves({"both": t, "ffn": t.assign(rel_compute=[0.4, 0.7, 1.0])})
    assert [line.get_label() for line in ax.get_lines()] == ["both", "ffn"]
    fig = plotting.architecture_diagram(0.25, d=384, heads=6, d_k=64, d_h=1536)
    ax = fig.axes[0]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "d_k 64 → 16" in texts and "d_h 1536 → 384" in texts
    # 6 heads x 3 (Q, K, V) x (full + kept) + residual + FFN (full + kept) + 2 legend proxies
    assert len(ax.patches) - sum(isinstance(p, matplotlib.patches.FancyArrowPatch)
                                 for p in ax.patches) == 36 + 1 + 2 + 2
    with pytest.raises(ValueError, match="width"):
        plotting.architecture_diagram(0.0)


def test_profiles_resolve_and_validate(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    assert profiles.get().name == "default"
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.get().name == "smoke"
    cfg = profiles.resolve(None, models="rs-mae-tiny", widths=[0.5, 1], seeds=[3], batch_size="8")
    assert cfg.models == ("rs-mae-tiny",) and cfg.widths == (0.5, 1.0)
    assert cfg.seeds == (3,) and cfg.batch_size == 8
    assert cfg.datasets is not None and cfg.cv_datasets is not None
    assert profiles.resolve("default").widths == tuple(sorted(profiles.resolve("default").widths))
    assert len(profiles.get("default").widths) == 31
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.get("huge")
    with pytest.raises(ValueError, match="unknown profile setting"):
        profiles.resolve("smoke", modles=["x"])
    with pytest.raises(ValueError):
        profiles.resolve("smoke", widths=[0.0])


def test_default_datasets_follow_the_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    cfg = profiles.resolve("smoke")
    assert cfg.datasets == (profiles.RS_FALLBACK,)
    assert "SYNTHETIC" in profiles.data_note(cfg)
    for folder in ("eurosat_rgb", "eurosat_ms", "ucmerced", "cifar10_train", "cifar10_test"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "manifest.csv").write_text("path,class,label\n")
    cfg = profiles.resolve("smoke", data_root=str(tmp_path))
    assert cfg.datasets == profiles.EMBEDDED_RS_DATASETS and cfg.cv_datasets == ("cifar10",)
    assert "SYNTHETIC" not in profiles.data_note(cfg)
    assert "RANDOM weights" in profiles.data_note(cfg)  # smoke skips pretraining
    assert "RANDOM" not in profiles.data_note(profiles.resolve("default", data_root=str(tmp_path)))


def test_paper_fig_parts_reads_raw_rows_without_the_stat_column():
    paper = reference.load().query("section == 'fig1a'").drop(columns=["stat"])
    mean, bands = plotting.paper_fig_parts(paper)
    assert len(mean) == len(reference.fig1_bins("fig1a"))
    assert set(bands) == set(mean["series"])


def test_ours_vs_paper_draws_both_sides_with_error_bars():
    ours = pd.DataFrame({"model": ["a"] * 3, "rel_compute_paper": [0.1, 0.5, 1.0],
                         "retention": [0.8, 0.9, 1.0], "std": [0.02, 0.01, 0.0],
                         "n_seeds": [3, 3, 3]})
    paper = reference.posthoc().query("dataset == 'm-eurosat' and series == 'DOFA (base)'")
    ax = plotting.ours_vs_paper(ours, paper)
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == [f"DOFA (base) — {plotting.PAPER_LABEL}"]
    assert ax.containers and ax.containers[0].get_label() == "a (this build, ± 2 SE)"
    assert "paper convention" in ax.get_xlabel()
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"][0]
    np.testing.assert_allclose(np.sort(dashed.get_xdata()), np.sort(paper["x"].to_numpy()))
    with pytest.raises(ValueError, match="missing"):
        plotting.ours_vs_paper(ours.drop(columns=["rel_compute_paper"]), paper)


def test_difference_plot_and_fig1b_draw_their_inputs():
    from slimlib.book import comparison

    ours = pd.DataFrame({"width": [0.1, 1.0], "retention": [0.9, 1.0], "std": [0.02, 0.02],
                         "n_seeds": [4, 4]})
    paper = pd.DataFrame({"width": [0.1, 1.0], "retention": [0.8, 1.0]})
    diff = comparison.paper_difference(ours, paper)
    ax = plotting.difference_plot(diff)
    np.testing.assert_allclose(np.asarray(ax.containers[0].lines[0].get_ydata(), dtype=float),
                               [0.1, 0.0], atol=1e-12)
    stats = plotting.bin_stats(pd.DataFrame({"rel_compute": [0.05, 0.06, 1.0],
                                             "value": [0.5, 0.6, 0.9]}), y="value")
    ax2 = plotting.fig1b({"ours": stats}, reference.fig1_bins("fig1b"),
                         refs=reference.fig1_reference_lines())
    labels = [line.get_label() for line in ax2.get_lines()]
    assert "ours (this build)" in labels
    assert any(label.startswith("CV MAE @ m-eurosat at 100 %") for label in labels)
