"""``diagnose(align=...)``: the hardware-aligned recommended width (slimlib.diagnosis._aligned)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import slimlib
from slimlib.diagnosis import _answer
from tests.diagnosis.test_compare import _hard_folder

# widths 1 and 0.1 only, a target every width reaches: the recommendation is s = 0.1, where the
# tiny ViT (48 wide, 3 heads of 16, FFN 192) keeps 1 dim per head and 19 FFN units
FAST = dict(widths=(1.0, 0.1), folds=3, keep=0.01, latency_repeats=3, latency_batch=2,
            sensitivity=False, control=False, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _hard_folder(tmp_path_factory.mktemp("aligned") / "imgs")


def _fake_timing(aligned_s: list[float]):
    """A stand-in for slimlib.measure.timed_rounds: the unaligned model takes 1 s per round,
    the aligned one ``aligned_s`` (one per round), every width of the main timing 1 s."""
    def timed_rounds(calls, *, repeats, **_):
        return {label: (list(aligned_s) if label == "aligned" else [1.0] * repeats)
                for label in calls}
    return timed_rounds


def test_aligned_width_recommended_when_faster_in_every_round(data, tmp_path, monkeypatch):
    import slimlib.measure
    from tests.features.test_extract import EncodeCounter

    monkeypatch.setattr(slimlib.measure, "timed_rounds", _fake_timing([0.5, 0.8, 0.9]))
    encodes = EncodeCounter(monkeypatch)
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              **FAST)
    # the sweep's train and test features of two widths, then only the aligned model's: the
    # full-width and unaligned features the check pairs it with come from the cache
    assert encodes.calls == 2 * 2 + 2
    al = result["aligned"]
    assert result["recommended_width"] == 0.1 and result["recommended_align"] == 8
    assert not al["same_model"]
    assert al["kept"] == "d_k' 1 per head, d_h' 19 FFN units"
    assert al["kept_aligned"] == "d_k' 8 per head, d_h' 24 FFN units"
    row = next(r for r in result["rows"] if r["width"] == 0.1)
    assert al["rel_compute"] > row["rel_compute"]  # more dims, more FLOPs
    assert al["speedup"] == {"median": 1 / 0.8, "min": 1 / 0.9, "max": 1 / 0.5, "rounds": 3}
    lo, hi = al["test_retention"]["lo"], al["test_retention"]["hi"]
    assert lo <= al["test_retention"]["value"] <= hi
    # the plain answer names the aligned call and gives its own compute and retention
    text = _answer.answer(result, result["evidence"])
    assert "slimlib.slim(model, 0.1, align=8)" in text
    assert f"{al['rel_compute']:.0%} of the compute" in text
    md = Path(result["paths"]["markdown"]).read_text()
    assert "## Hardware-aligned width" in md and "Recommended: slimlib.slim(model, 0.1, align=8)" in md
    saved = json.loads(Path(result["paths"]["json"]).read_text())
    assert saved["recommended_align"] == 8 and "--align 8" in saved["command"]


def test_aligned_width_not_recommended_when_one_round_is_slower(data, tmp_path, monkeypatch):
    import slimlib.measure

    monkeypatch.setattr(slimlib.measure, "timed_rounds", _fake_timing([0.5, 1.1, 0.5]))
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              **FAST)
    assert result["recommended_align"] is None
    assert result["aligned"]["speedup"]["median"] == 2.0  # faster in the median, still refused
    assert "not faster in every alternated round" in result["aligned"]["why"]
    assert "align=8" not in _answer.answer(result, result["evidence"])


def test_aligned_width_needs_timing_and_can_be_switched_off(data, tmp_path):
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "a",
                              **{**FAST, "latency": False})
    assert result["recommended_align"] is None
    assert result["aligned"]["speedup"] is None and "not timed" in result["aligned"]["why"]
    off = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "b",
                           **{**FAST, "latency": False, "align": 0})
    assert "aligned" not in off and off["recommended_align"] is None


def test_already_aligned_width_is_the_same_model(data, tmp_path):
    # s = 0.5 keeps 8 dims per head and 96 FFN units: already multiples of 8
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              **{**FAST, "widths": (1.0, 0.5), "latency": False})
    assert result["recommended_width"] == 0.5
    assert result["aligned"]["same_model"] and result["recommended_align"] is None
    assert "already a multiple of 8" in result["aligned"]["why"]
