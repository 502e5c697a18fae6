"""``diagnose(compare=...)`` / ``--compare``: a second checkpoint of one architecture, paired."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import slimlib
from slimlib.__main__ import main
from tests.tiny_models import build

FAST = dict(widths=(1.0, 0.5, 0.1), folds=3, latency=False, sensitivity=False, progress=False,
            control=False)


def _hard_folder(root: Path, per_class: int = 10, test: int = 8) -> Path:
    """Four colour classes under heavy noise: the tiny ViT scores well above chance but below 1,
    so bootstrap draws vary and an unpaired interval could not be a point."""
    from PIL import Image

    rng = np.random.default_rng(3)
    colours = [(134, 122, 122), (122, 134, 122), (122, 122, 134), (128, 128, 116)]
    for c, colour in enumerate(colours):
        for split, n in (("train", per_class), ("test", test)):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.clip(np.array(colour) + rng.normal(0, 40, (32, 32, 3)), 0, 255)
                Image.fromarray(a.astype(np.uint8)).save(d / f"{i}.png")
    return root


def _checkpoint(path: Path, noise: float) -> Path:
    torch.manual_seed(1)
    state = {k: v + noise * torch.randn_like(v) for k, v in build().state_dict().items()}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _hard_folder(tmp_path_factory.mktemp("cmp") / "imgs")


def test_same_checkpoint_differs_by_exactly_zero(data, tmp_path):
    """The compared checkpoint is the model itself: every paired difference is 0 with the
    interval [0, 0], while the scores themselves have intervals of real width."""
    same = _checkpoint(tmp_path / "same.pt", noise=0.0)
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              compare=str(same), **FAST)
    widths = result["evidence"]["widths"]
    assert result["compare_model"] == "tests.tiny_models:build [compared checkpoint]"
    full = widths[1.0]["model_score"]
    assert 0.25 < full["value"] < 1.0 and full["hi"] - full["lo"] > 0.05
    for w, e in widths.items():
        assert e["compare_score"] == e["model_score"]
        for key in ("compare_minus_model", "compare_minus_model_retention"):
            assert (e[key]["value"], e[key]["lo"], e[key]["hi"]) == (0.0, 0.0, 0.0), (w, key)
    assert result["compare_cv"] == {r["width"]: r["cv_retention"] for r in result["rows"]}
    assert result["compare_recommended_width"] == result["recommended_width"]


def test_other_checkpoint_reports_paired_differences(data, tmp_path):
    other = _checkpoint(tmp_path / "other.pt", noise=0.5)
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              compare=str(other), **FAST)
    widths = result["evidence"]["widths"]
    assert any(e["compare_score"]["value"] != e["model_score"]["value"] for e in widths.values())
    for e in widths.values():
        diff = e["compare_minus_model"]
        assert diff["value"] == pytest.approx(e["compare_score"]["value"]
                                              - e["model_score"]["value"])
        assert diff["lo"] <= diff["value"] <= diff["hi"]
    saved = json.loads(Path(result["paths"]["json"]).read_text())
    assert saved["compare_weights"] == f"weights file {other}"
    md = Path(result["paths"]["markdown"]).read_text()
    assert "## Comparison with a second checkpoint" in md and "compared − model" in md
    # the compared checkpoint is in the sweep table as its own model, on the same images
    sweep = Path(result["paths"]["sweep"]).read_text()
    assert "[compared checkpoint]" in sweep


def test_cli_compare_and_architecture_mismatch(data, tmp_path, capsys):
    other = _checkpoint(tmp_path / "other.pt", noise=0.5)
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--widths", "1", "0.5", "--folds", "3", "--no-latency", "--no-sensitivity",
                 "--no-control", "--no-progress", "--compare", str(other),
                 "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert code == 0
    assert "compared checkpoint (weights file" in out
    # a checkpoint of another architecture is refused before anything is written
    wrong = tmp_path / "wrong.pt"
    torch.save({"not.a.parameter": torch.zeros(2)}, wrong)
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--widths", "1", "0.5", "--folds", "3", "--no-latency", "--no-sensitivity",
                 "--no-progress", "--compare", str(wrong), "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit the model" in err
    assert not (tmp_path / "bad").exists()
