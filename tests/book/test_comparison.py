"""Paper vs ours: identical-compute merge, smallest width, paper-convention axis, differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slimlib.book import comparison, reference


def _curve() -> pd.DataFrame:
    """Two curves; in model "m" the widths 0.002 and 0.0025 have identical FLOPs."""
    return pd.DataFrame({
        "model": ["m", "m", "m", "m", "n", "n"],
        "width": [0.002, 0.0025, 0.1, 1.0, 0.1, 1.0],
        "flops": [120, 120, 400, 1000, 300, 900],
        "rel_compute": [0.12, 0.12, 0.4, 1.0, 1 / 3, 1.0],
        "retention": [0.5, 0.7, 0.9, 1.0, 0.8, 1.0],
        "note": ["a", "b", "c", "d", "e", "f"],
    })


def test_merge_identical_compute_gives_one_row_per_distinct_flops():
    merged = comparison.merge_identical_compute(_curve())
    m = merged[merged["model"] == "m"].set_index("width")
    assert len(m) == 3  # 0.002 and 0.0025 became one point
    assert m.loc[0.002, "retention"] == pytest.approx(0.6)  # averaged like the paper
    assert m.loc[0.002, "widths"] == "0.002|0.0025"
    assert m.loc[0.002, "n_merged"] == 2 and m.loc[0.002, "note"] == "a"
    assert m.loc[0.1, "n_merged"] == 1 and m.loc[0.1, "widths"] == "0.1"
    assert len(merged[merged["model"] == "n"]) == 2  # nothing to merge there


def test_merge_identical_compute_keeps_distinct_flops_apart():
    table = _curve().assign(flops=[120, 121, 400, 1000, 300, 900])
    assert len(comparison.merge_identical_compute(table)) == len(table)
    with pytest.raises(ValueError, match="missing"):
        comparison.merge_identical_compute(table.drop(columns=["flops", "rel_compute"]))


def test_at_smallest_width_picks_each_curves_smallest_width():
    small = comparison.at_smallest_width(_curve())
    assert list(small["model"]) == ["m", "n"]
    assert list(small["width"]) == [0.002, 0.1]
    assert list(small["retention"]) == [0.5, 0.8]
    # published rows: minimise the compute column instead
    ph = reference.posthoc()
    eu = ph[(ph["dataset"] == "m-eurosat") & (ph["series"] == "DOFA (base)")]
    got = comparison.at_smallest_width(eu, by=["series"], width="x")
    assert got["x"].iloc[0] == eu["x"].min() and got["s"].iloc[0] == "0.001"


def test_paper_difference_aligns_by_value_not_position():
    paper = pd.DataFrame({"model": ["m"] * 3, "width": [1.0, 0.01, 0.1],
                          "retention": [1.0, 0.80, 0.85]})
    # ours in another order, with an extra width the paper lacks and one it lacks
    ours = pd.DataFrame({"model": ["m"] * 3, "width": [0.1, 0.5, 1.0],
                         "retention": [0.9, 0.95, 1.0]})
    diff = comparison.paper_difference(ours, paper, by=["model"]).set_index("width")
    assert list(diff.index) == [0.1, 1.0]
    assert diff.loc[0.1, "difference"] == pytest.approx(0.05)
    assert diff.loc[1.0, "difference"] == pytest.approx(0.0)
    assert diff.attrs["unmatched_paper"] == 1  # s = 0.01 has no row of ours
    assert (diff["interval"] == "no interval: no spread").all()


def test_paper_difference_interval_from_seeds_and_deterministic_label():
    ours = pd.DataFrame({"width": [0.1, 1.0], "retention": [0.9, 1.0], "std": [0.02, 0.0],
                         "n_seeds": [4, 4]})
    paper = pd.DataFrame({"width": [0.1, 1.0], "retention": [0.8, 1.0]})
    diff = comparison.paper_difference(ours, paper).set_index("width")
    se = 0.02 / 2
    assert diff.loc[0.1, "diff_lo"] == pytest.approx(0.1 - 2 * se)
    assert diff.loc[0.1, "diff_hi"] == pytest.approx(0.1 + 2 * se)
    assert diff.loc[0.1, "reading"] == "ours above paper"
    assert "4 seeds" in diff.loc[0.1, "interval"]
    assert diff.loc[1.0, "reading"] == "no interval"  # zero spread is no interval
    assert diff.loc[1.0, "interval"].startswith("no interval: zero spread")
    assert np.isnan(diff.loc[1.0, "diff_lo"]) and np.isnan(diff.loc[1.0, "diff_hi"])
    one = comparison.paper_difference(ours.assign(n_seeds=1), paper)
    assert one["interval"].str.contains("one seed").all() and one["diff_lo"].isna().all()
    det = comparison.paper_difference(ours[["width", "retention"]], paper, deterministic=True)
    assert (det["interval"] == "no interval: deterministic").all()


def test_paper_difference_tolerance_on_rounded_compute():
    ours = pd.DataFrame({"rel_compute_paper": [0.150412, 0.52921], "retention": [0.9, 0.95]})
    paper = pd.DataFrame({"x": [0.1504, 0.5292, 0.2427], "retention": [0.88, 0.96, 0.9]})
    strict = comparison.paper_difference(ours, paper, on="rel_compute_paper", paper_on="x")
    assert strict.empty and strict.attrs["unmatched_paper"] == 3
    loose = comparison.paper_difference(ours, paper, on="rel_compute_paper", paper_on="x",
                                        tolerance=5e-5)
    np.testing.assert_allclose(loose["difference"], [0.02, -0.01])
    with pytest.raises(ValueError, match="missing"):
        comparison.paper_difference(ours, paper)  # paper has no "rel_compute_paper"


def test_paper_axis_reproduces_published_ssl4eo_compute():
    """SSL4EO ViT-S at s = 0.1 in the paper's convention: the published 0.1504."""
    axis = comparison.paper_axis("ssl4eo-vits16-moco", [0.1, 0.002, 0.0025]).set_index("width")
    assert axis.loc[0.1, "rel_compute_paper"] == pytest.approx(0.1504, abs=1e-4)
    assert axis.loc[1.0, "rel_compute_paper"] == 1.0
    # the two widths the paper merged have identical FLOPs here too
    assert axis.loc[0.002, "flops_paper"] == axis.loc[0.0025, "flops_paper"]
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        comparison.paper_axis("ssl4eo-vits16-moco", [0.0])


def test_with_paper_axis_maps_controls_to_their_architecture():
    table = pd.DataFrame({"model": ["ssl4eo-vits16-moco",
                                    "ssl4eo-vits16-moco [random init 1]"],
                          "width": [0.1, 0.1], "value": [0.5, 0.2]})
    out = comparison.with_paper_axis(table)
    assert out["rel_compute_paper"].iloc[0] == pytest.approx(0.1504, abs=1e-4)
    assert out["rel_compute_paper"].iloc[0] == out["rel_compute_paper"].iloc[1]
    assert list(out["value"]) == [0.5, 0.2]


def test_paper_difference_carries_paper_columns_and_posthoc_mean_range():
    mean = reference.posthoc_mean("m-eurosat")
    assert mean["n_models"].max() == 10 and (mean["retention_min"] <= mean["retention"]).all()
    ours = pd.DataFrame({"width": [0.1, 1.0], "retention": [0.9, 1.0]})
    diff = comparison.paper_difference(ours, mean, paper_extra=["retention_min",
                                                                "retention_max"])
    row = diff.set_index("width").loc[0.1]
    published = mean.set_index("width").loc[0.1]
    assert row["paper"] == published["retention"]
    assert row["paper retention_min"] == published["retention_min"]


def test_paired_difference_subtracts_by_width_with_combined_se():
    ret = pd.DataFrame({"model": ["r", "r", "s", "s"], "dataset": "d",
                        "width": [1.0, 0.1, 0.1, 1.0], "mean": [0.9, 0.6, 0.7, 0.92],
                        "std": [0.0, 0.03, 0.04, 0.0], "n_seeds": [4, 4, 4, 4]})
    gain = comparison.paired_difference(ret, "r", "s").set_index("width")
    assert gain.loc[0.1, "difference"] == pytest.approx(0.1)
    assert gain.loc[1.0, "difference"] == pytest.approx(0.02)
    assert gain.loc[0.1, "se"] == pytest.approx(np.hypot(0.015, 0.02))
    assert gain.loc[0.1, "se_source"] == "SE over 4 seeds / SE over 4 seeds"
    one = comparison.paired_difference(ret.assign(n_seeds=1), "r", "s")
    assert one["se"].isna().all()
    diff = comparison.paper_difference(one, pd.DataFrame({"width": [0.1], "gain": [0.05]}),
                                       value="difference", paper_value="gain")
    assert diff["interval"].iloc[0] == "no interval: one seed / one seed"
    with pytest.raises(ValueError, match="no rows"):
        comparison.paired_difference(ret, "r", "x")
