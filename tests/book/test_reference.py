"""The packaged published numbers and the paper-vs-ours helpers of slimlib.book.reference."""

from __future__ import annotations

import pandas as pd
import pytest

from slimlib.book import reference


def test_paper_convention_is_fvcore_and_read_only():
    assert dict(reference.PAPER_CONVENTION) == {"count_attention": False, "count_norms": True}
    with pytest.raises(TypeError):
        reference.PAPER_CONVENTION["count_norms"] = False  # type: ignore[index]


def test_widths_of_reads_merged_points():
    assert reference.widths_of("0.1") == (0.1,)
    assert reference.widths_of("0.002|0.0025") == (0.002, 0.0025)
    assert reference.widths_of(None) == () and reference.widths_of(float("nan")) == ()


def test_paper_compute_has_float_widths_and_the_merged_ssl4eo_point():
    pc = reference.paper_compute(["ssl4eo-vits16-moco"])
    assert len(pc) == 30  # 31 widths, two of them merged (identical FLOPs)
    merged = pc[pc["merged"]]
    assert list(merged["s"]) == ["0.002|0.0025"] and merged["width"].iloc[0] == 0.002
    assert pc.set_index("width").loc[0.1, "rel_compute"] == pytest.approx(0.1504)
    assert len(reference.paper_compute(["dofa-base"])) == 31


def test_compute_side_by_side_aligns_by_width_and_labels_conventions():
    # a stand-in for compute_table_cached output: the paper's own values under the paper's
    # convention (difference 0) and a shifted copy under the default count
    pc = reference.paper_compute(["ssl4eo-vits16-moco"])
    widths = [0.001, 0.002, 0.0025, 0.1, 1.0]
    x = pc.set_index("width")["rel_compute"]
    flops = [int(1e6 * x.get(w, x[0.002])) for w in widths]
    paper_conv = pd.DataFrame({"model": "ssl4eo-vits16-moco", "width": widths, "flops": flops,
                               "rel_compute": [f / flops[-1] for f in flops],
                               "count_attention": False, "count_norms": True,
                               "parts": "attn+ffn"})
    default = paper_conv.assign(rel_compute=paper_conv["rel_compute"] - 0.01,
                                count_attention=True, count_norms=False)
    default.loc[default["width"] == 1.0, "rel_compute"] = 1.0
    one_part = paper_conv.assign(parts="attn")  # ignored
    side = reference.compute_side_by_side(pd.concat([paper_conv, default, one_part]))
    conv = side[side["convention"].str.startswith("paper convention")].set_index("width")
    assert list(conv.index) == [0.001, 0.002, 0.1, 1.0]  # 0.0025 merged into 0.002
    assert conv.loc[0.002, "s"] == "0.002|0.0025"
    assert conv["difference"].abs().max() < 1e-4  # rounding of the published 4 decimals
    assert (side["interval"] == "no interval: deterministic").all()
    att = side[side["convention"] == "attention products counted"].set_index("width")
    assert att.loc[0.1, "difference"] == pytest.approx(-0.01, abs=1e-4)
    assert reference.compute_side_by_side(paper_conv.assign(model="galileo-nano")).empty


def test_smallest_budget_retention_reproduces_the_published_range():
    wide = reference.smallest_budget_retention()
    # README: retention at each model's smallest budget on m-eurosat spans 82-95 % for the
    # ViT-B/L models; Panopticon (compute floor 0.63) is the outlier at 76 %
    eu = wide.drop(index="mean over models")["m-eurosat"]
    assert eu.drop(index="Panopticon").between(0.82, 0.96).all()
    assert wide.loc["mean over models", "mean"] == pytest.approx(
        wide.drop(index="mean over models")["mean"].mean())
    eight = reference.smallest_budget_retention(series=reference.FIG1_SERIES)
    assert len(eight) == 8 + 1
    # the camera-ready's "≈ 85 %": 8 RS FMs x 4 datasets
    assert eight.loc["mean over models", "mean"] == pytest.approx(0.847, abs=5e-4)
    tidy = reference.smallest_budget_retention(wide=False)
    assert (tidy.groupby(["series", "dataset"]).size() == 1).all()
    with pytest.raises(ValueError, match="no published"):
        reference.smallest_budget_retention(datasets=["nope"])


def test_fig1_bins_and_reference_lines():
    bins = reference.fig1_bins("fig1a")
    rs = bins[bins["series"] == "RS FMs @ 4 RS datasets (avg.)"].set_index("bin")
    assert rs.loc[0.0, "mean"] == pytest.approx(0.8594)
    assert rs.loc[0.0, "lo"] == pytest.approx(0.6697) and rs.loc[0.0, "hi"] == 1.0491
    assert 0.9 not in rs.index  # the paper has no 0.9 bin
    refs = reference.fig1_reference_lines()
    assert list(refs["y"]) == [0.764]
    with pytest.raises(ValueError, match="fig1a"):
        reference.fig1_bins("posthoc")


def test_native_gain_pairs_points_by_width():
    gain = reference.native_gain()
    assert set(gain["method"]) == {"MAE", "MoCo"}
    assert len(gain) == 2 * 31
    native = reference.posthoc("native")
    eu = native[native["dataset"] == "m-eurosat"].set_index(["series", "width"])["y"]
    row = gain[(gain["method"] == "MoCo") & (gain["width"] == 0.1)].iloc[0]
    assert row["gain"] == pytest.approx(eu[("MoCo: slimmable training", 0.1)]
                                        - eu[("MoCo: regular training", 0.1)])


def test_newfms_retention_is_relative_to_full_width():
    nf = reference.newfms()
    full = nf[nf["width"] == 1.0]
    assert (full["retention"] == 1.0).all()
    assert set(nf["protocol"]) == {"knn", "linear"}
    assert sorted(nf["width"].unique()) == [0.001, 0.01, 0.1, 0.5, 1.0]
