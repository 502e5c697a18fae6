"""The plain answer, intervals and warnings of the slimmability report (slimlib.diagnosis._answer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import slimlib
from slimlib.diagnosis import _answer, _report
from slimlib.sweeping.outcomes import encode


def _table(labels, preds_by):
    """A sweep table with one knn row per (model, width) and its per-image outcomes."""
    rows = []
    for (model, width), preds in preds_by.items():
        correct = np.mean(np.asarray(preds) == labels)
        rows.append({"model": model, "protocol": "knn", "width": width, "seed": 0,
                     "value": correct, "outcomes": encode(labels, preds)})
    return pd.DataFrame(rows)


def _result(widths, retention, keep=0.95, chosen=1.0, classes=4, latency=None):
    rows = []
    for i, w in enumerate(widths):
        row = {"width": w, "rel_compute": w ** 1.5, "score": 0.8, "retention": retention[i],
               "control_retention": 1.0, "cv_retention": 1.0}
        if latency:
            row.update(latency_ms=latency[i], throughput_img_s=100 / latency[i], batch=8,
                       repeats=3)
        rows.append(row)
    return {"model": "m", "classes": [f"c{i}" for i in range(classes)], "rows": rows,
            "keep": keep, "recommended_width": chosen,
            "recommended_test_retention": retention[widths.index(chosen)]}


def _outcomes(labels, accuracy, rng):
    """Predictions right on about ``accuracy`` of the images, wrong (shifted class) elsewhere."""
    wrong = rng.random(labels.size) > accuracy
    return np.where(wrong, (labels + 1) % 4, labels)


def test_fmt_rounds_to_the_interval():
    assert _answer.fmt(0.81234, 0.77, 0.85) == "0.812 [0.770, 0.850]"   # half-width 0.04
    assert _answer.fmt(0.81234, 0.5, 0.9) == "0.81 [0.50, 0.90]"        # half-width 0.2
    assert _answer.fmt(0.98878033) == "0.989"                            # no interval
    assert _answer.decimals(0.0013) == 4 and _answer.decimals(float("nan")) == 3


def test_intervals_are_paired_and_control_warning_fires():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    full = _outcomes(labels, 0.8, rng)
    table = _table(labels, {("m", 1.0): full, ("m", 0.5): full,
                            ("m [random init]", 1.0): _outcomes(labels, 0.78, rng),
                            ("m [random init]", 0.5): _outcomes(labels, 0.7, rng)})
    result = _result([1.0, 0.5], [1.0, 1.0])
    ev = _answer.evidence(result, table)
    assert ev["chance"] == 0.25
    full_est = ev["full"]
    assert full_est["lo"] < full_est["value"] < full_est["hi"]
    # identical outcomes at 0.5 and 1: the paired retention interval is a point
    r = ev["widths"][0.5]["model_retention"]
    assert r["lo"] == pytest.approx(1.0) and r["hi"] == pytest.approx(1.0)
    assert any("not clearly above its random-init control" in w for w in ev["warnings"])
    assert not any("near chance" in w for w in ev["warnings"])


def test_near_chance_and_held_out_miss_warnings():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 25)
    table = _table(labels, {("m", 1.0): _outcomes(labels, 0.3, rng),
                            ("m", 0.1): _outcomes(labels, 0.25, rng)})
    result = _result([1.0, 0.1], [1.0, 0.9], chosen=0.1)
    ev = _answer.evidence(result, table)
    text = " ".join(ev["warnings"])
    assert "near chance" in text
    assert "held-out test retention" in text and "below the 95% target" in text
    # a model well above chance with a test retention meeting the target: no warnings
    good = _table(labels, {("m", 1.0): _outcomes(labels, 0.9, rng),
                           ("m", 0.1): _outcomes(labels, 0.9, rng)})
    assert _answer.evidence(_result([1.0, 0.1], [1.0, 0.99], chosen=0.1), good)["warnings"] == []


def test_answer_notes_and_report_sections():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 25)
    full = _outcomes(labels, 0.85, rng)
    table = _table(labels, {("m", 1.0): full, ("m", 0.5): labels, ("m", 0.25): full})
    result = _result([1.0, 0.5, 0.25], [1.0, 1.02, 0.97], chosen=0.25,
                     latency=[7.3, 7.6, 7.0])
    ev = _answer.evidence(result, table)
    sentence = _answer.answer(result, ev)
    assert sentence.startswith("Slim to s = 0.25: ") and "% of the compute, 1.0" in sentence
    assert "throughput" in sentence and "batch 8" in sentence
    assert any("Retention above 1" in n for n in ev["notes"])
    assert any("per-call overhead" in n for n in ev["notes"])
    no = _result([1.0, 0.5], [1.0, 0.5], chosen=1.0)
    assert _answer.answer(no, _answer.evidence(no, table)).startswith("Do not slim")
    assert _report.SECTIONS[0] is _report.answer_section


def _noise_folder(root: Path, per_class: int = 10, test: int = 6, classes: int = 4) -> Path:
    """Classes that differ in nothing: any model is at chance on them."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        for split, n in (("train", per_class), ("test", test)):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i}.png")
    return root


def test_near_chance_model_is_flagged_in_the_report_and_cli(tmp_path, capsys):
    from slimlib.__main__ import main

    data = _noise_folder(tmp_path / "noise")
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--out", str(tmp_path / "r"), "--widths", "1", "0.5", "--folds", "3",
                 "--latency-repeats", "1", "--latency-batch", "2", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "WARNING: The full-width model is near chance" in printed
    assert "chance 0.25" in printed
    md = (tmp_path / "r" / "report.md").read_text()
    first = md.split("\n")[2]
    assert first.startswith(("**Unreliable (see the warnings): Slim to", "**Do not slim"))
    assert "near chance" in md and "random-init control at full width" in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert "class='answer'" in html and "docs/deploy.md" not in html
    assert "Definitions" in html and "throughput b2" in html
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["evidence"]["chance"] == 0.25


def test_python_result_carries_evidence(tmp_path):
    from tests.diagnosis.test_diagnose import FAST, _folder

    result = slimlib.diagnose("tests.tiny_models:build", str(_folder(tmp_path / "d")),
                              out=tmp_path / "rep", **FAST)
    ev = result["evidence"]
    assert set(ev["widths"]) == {1.0, 0.5, 0.25}
    assert ev["control_full"] is not None and "gain_over_control" in ev


def test_help_shows_defaults_and_old_flags_warn(tmp_path, capsys, monkeypatch):
    from slimlib.__main__ import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    diag = sub.choices["diagnose"].format_help()
    assert "(default: 0.95)" in diag and "(default: slimreport)" in diag
    assert "--checkpoint" in diag and "deprecated alias of --checkpoint" in diag
    sweep = sub.choices["sweep"].format_help()
    assert "--hub-dir" in sweep and "(default: 04:00)" in sweep
    args = parser.parse_args(["diagnose", "--model", "m", "--data", "d", "--weights", "x.pt"])
    assert args.checkpoint == "x.pt"
    assert "--weights is deprecated; use --checkpoint" in capsys.readouterr().err
    args = parser.parse_args(["diagnose", "--model", "m", "--data", "d", "--checkpoint", "y"])
    assert args.checkpoint == "y" and capsys.readouterr().err == ""
    args = parser.parse_args(["sweep", "--weights", "hub", "--plan"])
    assert args.hub_dir == "hub"
    assert "--weights is deprecated; use --hub-dir" in capsys.readouterr().err
    assert parser.parse_args(["sweep", "--hub-dir", "h", "--plan"]).hub_dir == "h"
