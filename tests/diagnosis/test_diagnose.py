"""slimlib.diagnose and ``python -m slimlib diagnose``: the report and every input error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import slimlib
from slimlib.__main__ import main
from slimlib.diagnosis import cv_retention, slimmability_score

FAST = dict(widths=(1.0, 0.5, 0.25), folds=3, latency_repeats=1, latency_batch=2, sensitivity=False,
            progress=False)


def _folder(root: Path, per_class: int = 6, test: int = 3, size: int = 32, split: bool = True,
            classes: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        colour = np.array([(200, 30, 30), (30, 200, 30), (30, 30, 200), (120, 120, 20)][c])
        for s, n in ((("train", per_class), ("test", test)) if split else (("", per_class),)):
            d = root / s / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.clip(colour + rng.normal(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i}.png")
    return root


def test_score_definition():
    assert slimmability_score([1.0, 0.5, 0.25], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert slimmability_score([1.0, 0.25], [1.0, 0.0]) == pytest.approx(0.5)
    # retention above 1 is clipped, so it cannot inflate the score
    assert slimmability_score([1.0, 0.25], [1.0, 2.0]) == pytest.approx(1.0)
    # trapezoids in log compute: the half at high compute weighs as much as the low half
    value = slimmability_score([1.0, 0.5, 0.25], [1.0, 1.0, 0.0])
    assert value == pytest.approx(0.75)
    with pytest.raises(ValueError, match="compute < 1"):
        slimmability_score([1.0, 1.0], [1.0, 1.0])


def test_recommend_width_needs_every_larger_width():
    from slimlib.diagnosis import recommend_width

    cv = {1.0: 1.0, 0.5: 0.97, 0.25: 0.90, 0.1: 0.99}
    assert recommend_width(cv, 0.95) == 0.5  # the dip at 0.25 stops the search
    assert recommend_width(cv, 0.8) == 0.1
    assert recommend_width({1.0: 1.0, 0.5: 0.5}, 0.95) == 1.0


def test_cv_retention_uses_only_given_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    good = np.eye(3)[y] + 0.01 * rng.normal(size=(30, 3))
    noise = rng.normal(size=(30, 3))
    cv = cv_retention({1.0: good, 0.5: noise}, y, folds=5)
    assert cv[1.0] == 1.0
    assert cv[0.5] < 0.8


def test_diagnose_function_model_writes_report(tmp_path):
    data = _folder(tmp_path / "imgs")
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep", **FAST)
    for kind in ("html", "markdown", "json", "png"):
        assert Path(result["paths"][kind]).is_file()
    html = Path(result["paths"]["html"]).read_text()
    assert "data:image/png;base64," in html
    assert "random-init control" in html
    saved = json.loads(Path(result["paths"]["json"]).read_text())
    assert saved["model_kind"] == "function"
    assert [r["width"] for r in saved["rows"]] == [1.0, 0.5, 0.25]
    assert 0.0 < saved["compute_floor"] < saved["rows"][-1]["rel_compute"] < 1.0
    assert 0.0 <= saved["score"] <= 1.0 and saved["control_score"] is not None
    assert saved["recommended_width"] in (1.0, 0.5, 0.25)
    assert saved["recommended_cv_retention"] >= 0.95
    assert all(r["latency_ms"] > 0 and r["throughput_img_s"] > 0 for r in saved["rows"])
    assert saved["command"].startswith("python -m slimlib diagnose --model tests.tiny_models:build")
    assert "report.md" in result["paths"]["markdown"]
    assert not saved["random_weights"]


def test_each_width_is_slimmed_once_and_the_cv_reads_the_sweeps_features(tmp_path,
                                                                        monkeypatch):
    """The CV's training features and the timing reuse one slimmed module per width, and the
    CV finds the training features the sweep cached (same key), so nothing is extracted twice.
    Before, diagnose slimmed every width for the CV and again for the timing (and 0.5 once
    more as a check)."""
    from slimlib.diagnosis import _diagnose
    from tests.features.test_extract import EncodeCounter

    widths, real_slim = [], _diagnose.slim

    def counting_slim(model, width, **options):
        widths.append(width)
        return real_slim(model, width, **options)

    monkeypatch.setattr(_diagnose, "slim", counting_slim)
    encodes = EncodeCounter(monkeypatch)
    result = slimlib.diagnose("tests.tiny_models:build", str(_folder(tmp_path / "imgs")),
                              out=tmp_path / "rep", control=False, align=0, **FAST)
    assert sorted(widths) == [1e-9, 0.25, 0.5, 1.0]  # every width once, and the compute floor
    assert encodes.calls == 2 * 3  # the sweep's train and test features of the three widths
    assert all(r["latency_ms"] > 0 for r in result["rows"])


def test_random_control_differs_and_keeps_architecture():
    from slimlib.sweeping.controls import random_init as random_control
    from tests.tiny_models import build

    m = build()
    c = random_control(m, seed=1)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in c.named_parameters()]
    assert not torch.equal(m.blocks[0].attn.qkv.weight, c.blocks[0].attn.qkv.weight)
    assert not torch.equal(m.cls_token, c.cls_token)
    assert torch.equal(random_control(m, seed=1).pos_embed, c.pos_embed)  # seeded


def test_cli_exit_codes(tmp_path, capsys):
    data = _folder(tmp_path / "imgs")
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--out", str(tmp_path / "r"), "--widths", "1", "0.5", "--folds", "3",
                 "--latency-repeats", "1", "--latency-batch", "2", "--no-progress",
                 "--no-control"])
    assert code == 0
    assert (tmp_path / "r" / "report.html").is_file()
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["control_score"] is None
    code = main(["diagnose", "--model", "tests.tiny_models:conv", "--data", str(data),
                 "--out", str(tmp_path / "r2"), "--no-progress"])
    assert code == 2
    assert "no transformer blocks" in capsys.readouterr().err
    assert not (tmp_path / "r2" / "report.html").exists()


def test_split_folder_without_train_test(tmp_path):
    data = _folder(tmp_path / "flat", per_class=8, split=False)
    result = slimlib.diagnose("tests.tiny_models:build", str(data), out=tmp_path / "rep",
                              control=False, latency=False, **{**FAST, "folds": 2})
    assert result["n_train"] + result["n_test"] == 24 and result["n_test"] == 6


@pytest.mark.parametrize(("model", "data_kw", "error", "match"), [
    ("tests.tiny_models:conv", {}, TypeError, "no transformer blocks"),
    ("tests.tiny_models:nothing", {}, ValueError, "no callable 'nothing'"),
    ("tests.tiny_models:not_a_module", {}, TypeError, "must return an nn.Module"),
    ("no_such_pkg_xyz:build", {}, ValueError, "cannot import module"),
    ("not-a-model-xyz", {}, ValueError, "unknown model"),
    ("tests.tiny_models:build", {"bands": ("B04", "B03")}, ValueError, "8-bit images hold"),
    ("tests.tiny_models:build", {"per_class": 2}, ValueError, "too few training images"),
    ("tests.tiny_models:build", {"missing": True}, FileNotFoundError, "does not exist"),
    ("tests.tiny_models:build", {"classes": 1}, ValueError, "at least two classes"),
])
def test_bad_inputs_raise_clear_errors(tmp_path, model, data_kw, error, match):
    data_kw = dict(data_kw)
    bands = data_kw.pop("bands", None)
    if data_kw.pop("missing", False):
        data = str(tmp_path / "missing" / "folder")
    else:
        data = str(_folder(tmp_path / "d", **data_kw))
    with pytest.raises(error, match=match):
        slimlib.diagnose(model, data, out=tmp_path / "rep", bands=bands, **FAST)
    assert not (tmp_path / "rep" / "report.html").exists()


def test_unsupported_block_is_named(tmp_path):
    import timm

    import tests.tiny_models as tm

    def rope():
        return timm.create_model("vit_small_patch16_rope_224", pretrained=False, num_classes=0,
                                 img_size=32, depth=1)

    tm.rope = rope
    try:
        with pytest.raises(TypeError, match="unsupported attention"):
            slimlib.diagnose("tests.tiny_models:rope", str(_folder(tmp_path / "d")),
                             out=tmp_path / "rep", **FAST)
    finally:
        del tm.rope


def test_wrong_bands_for_registry_model(tmp_path):
    """A multispectral registry spec cannot be fed RGB images: a clear error, no report."""
    import dataclasses

    from slimlib.diagnosis._inputs import resolve_data
    from slimlib.models.encoder import ModuleEncoder
    from slimlib.specs import ModelSpec
    from tests.tiny_models import build

    spec = ModelSpec(name="ms-tiny", family="rs", architecture="ViT", bands=("B02", "B08"),
                     mean=(0.1, 0.1), std=(0.1, 0.1), units="reflectance", input_size=32,
                     patch_size=8, embed_dim=48)
    vit = build()
    vit.patch_embed.proj = torch.nn.Conv2d(2, 48, 8, 8)
    enc = ModuleEncoder(vit, dataclasses.replace(spec))
    _, train, test = resolve_data(str(_folder(tmp_path / "d")), progress=False)
    with pytest.raises(ValueError, match="cannot feed model 'ms-tiny'"):
        slimlib.diagnose(enc, (train, test), out=tmp_path / "rep", **FAST)


@pytest.mark.slow
@pytest.mark.data
def test_vit_small_on_eurosat_rgb_cli(tmp_path, data_root):
    """The issue's command on real data (random timm weights, tiny subset, 64 px)."""
    code = main(["diagnose", "--model", "vit_small_patch16_224", "--data", "eurosat-rgb",
                 "--limit-per-class", "5", "--image-size", "32", "--widths", "1", "0.25",
                 "--folds", "3", "--latency-repeats", "1", "--latency-batch", "2",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 0
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["random_weights"] and "RANDOM" in (tmp_path / "r" / "report.md").read_text()
    assert saved["n_train"] == 50 and not math.isnan(saved["score"])


def test_registry_data_subset_when_loader_cannot():
    """synthetic-ms's loader has no limit_per_class: the subset is taken after loading."""
    from slimlib.diagnosis._inputs import resolve_data

    name, train, test = resolve_data("synthetic-ms", limit_per_class=3, progress=False)
    assert name == "synthetic-ms" and train.synthetic
    assert torch.bincount(train.labels).tolist() == [3] * 10
    assert torch.bincount(test.labels).max() <= 3
    with pytest.raises(ValueError, match="has no band"):
        resolve_data("synthetic-ms", bands=("B02", "X9"), progress=False)


def test_tiff_folder_bands(tmp_path):
    """Multi-band TIFFs need one band name per channel; a model with other channels is refused."""
    import tifffile

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for c in range(2):
            d = tmp_path / "tif" / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                tifffile.imwrite(d / f"{i}.tif", (rng.random((32, 32, 2)) * 3000 + c * 2000)
                                 .astype(np.uint16))
    folder = str(tmp_path / "tif")
    with pytest.raises(ValueError, match="2-band uint16 data need bands="):
        slimlib.diagnose("tests.tiny_models:build", folder, out=tmp_path / "r", **FAST)
    with pytest.raises(ValueError, match="has 2 channels but bands= names 3"):
        slimlib.diagnose("tests.tiny_models:build", folder, bands=("B02", "B03", "B04"),
                         out=tmp_path / "r", **FAST)
    with pytest.raises(ValueError, match="Pass bands= matching the model's input channels"):
        slimlib.diagnose("tests.tiny_models:build", folder, bands=("B04", "B08"),
                         out=tmp_path / "r", **FAST)
    # a timm name is built with one input channel per band and the data's own statistics
    result = slimlib.diagnose("vit_tiny_patch16_224", folder, bands=("B04", "B08"),
                              image_size=32, out=tmp_path / "ok", control=False, latency=False,
                              **{**FAST, "widths": (1.0, 0.5)})
    assert result["bands"] == ["B04", "B08"] and result["units"] == "reflectance"
    assert result["random_weights"] and result["model_kind"] == "timm"


# ------------------------------------------------------------ report folders and arguments


def test_a_second_run_into_a_report_folder_refuses_unless_overwrite(tmp_path):
    data = str(_folder(tmp_path / "imgs"))
    kw = dict(out=tmp_path / "rep", control=False, latency=False, **FAST)
    slimlib.diagnose("tests.tiny_models:build", data, **kw)
    before = {p.name: p.read_bytes() for p in (tmp_path / "rep").iterdir()}
    with pytest.raises(ValueError, match="already holds a report .*--overwrite"):
        slimlib.diagnose("tests.tiny_models:build", data, **kw)
    assert {p.name: p.read_bytes() for p in (tmp_path / "rep").iterdir()} == before
    result = slimlib.diagnose("tests.tiny_models:build", data, overwrite=True,
                              **{**kw, "widths": (1.0, 0.5)})
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert [r["width"] for r in saved["rows"]] == [1.0, 0.5] == [r["width"] for r in
                                                                  result["rows"]]


@pytest.mark.parametrize(("extra", "match"), [
    (["--device", "cuda"], "CUDA is not available"),
    (["--batch-size", "0"], "batch_size must be a positive integer"),
    (["--latency-repeats", "0"], "latency_repeats must be a positive integer"),
])
def test_bad_arguments_leave_no_report_folder(tmp_path, capsys, extra, match):
    if extra[0] == "--device" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    data = _folder(tmp_path / "imgs")
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--out", str(tmp_path / "new" / "rep"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    data = _folder(tmp_path / "imgs")
    (tmp_path / "afile").write_text("keep me")
    code = main(["diagnose", "--model", "tests.tiny_models:build", "--data", str(data),
                 "--out", str(tmp_path / "afile"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "is a file; pass a folder" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "keep me"


def test_reproduce_command_and_json_record_absolute_paths(tmp_path, monkeypatch):
    import shlex

    _folder(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    result = slimlib.diagnose("tests.tiny_models:build", "imgs", out="rep", control=False,
                              latency=False, **FAST)
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    args = shlex.split(saved["command"])
    assert args[args.index("--data") + 1] == str(tmp_path / "imgs")
    assert args[args.index("--out") + 1] == str(tmp_path / "rep")
    assert saved["data"] == str(tmp_path / "imgs") and saved["out"] == str(tmp_path / "rep")
    assert all(Path(p).is_absolute() for p in result["paths"].values())


def test_a_name_that_is_both_a_registry_dataset_and_a_folder_is_an_error(tmp_path, monkeypatch):
    from slimlib.diagnosis._inputs import resolve_data

    _folder(tmp_path / "synthetic-ms")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"both a registry dataset and the local folder .* "
                                         r"write \./synthetic-ms for the folder or "
                                         r"registry:synthetic-ms"):
        resolve_data("synthetic-ms", progress=False)
    name, train, _ = resolve_data("./synthetic-ms", progress=False)
    assert name == "synthetic-ms" and train.units == "rgb01" and not train.synthetic
    name, train, _ = resolve_data("registry:synthetic-ms", limit_per_class=2, progress=False)
    assert name == "synthetic-ms" and train.synthetic
    with pytest.raises(ValueError, match="unknown registry dataset 'nope'"):
        resolve_data("registry:nope", progress=False)


def test_timing_moves_the_models_and_the_input_to_the_device():
    """``diagnose --device cuda`` timed the CPU before; the meta device shows the move here."""
    from slimlib.diagnosis._diagnose import _time_widths
    from slimlib.slimming import slim
    from tests.tiny_models import build

    models = {1.0: build().eval(), 0.5: slim(build().eval(), 0.5)}
    timing = _time_widths(models, torch.zeros(1, 3, 32, 32), 2, 1, False, torch.device("meta"))
    assert set(timing) == {1.0, 0.5}
    assert all(p.device.type == "meta" for m in models.values() for p in m.parameters())


# --------------------------------------------------------------- offline pretrained weights


def _hf_cache_with(cache: Path, repo: str, state: dict) -> Path:
    """A Hugging Face hub cache holding ``repo``'s ``model.safetensors`` (its real layout)."""
    from safetensors.torch import save_file

    base = cache / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text("0" * 40)
    snap = base / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return snap / "model.safetensors"


def test_offline_timm_pretrained_fails_fast_or_uses_the_cache(tmp_path, monkeypatch):
    """Before: timm retried the download for ~51 s before failing."""
    import time

    import huggingface_hub.constants as hf_constants
    import timm

    from slimlib.diagnosis._inputs import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    kw = dict(bands=("R", "G", "B"), units="rgb01", mean=None, std=None, input_size=32)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"offline .*not in the Hugging Face cache\. Download "
                                         r"https://huggingface\.co/timm/vit_tiny_patch16_224\."
                                         r".*--checkpoint /path/to/model\.safetensors") as err:
        resolve_model("vit_tiny_patch16_224", weights="pretrained", **kw)
    assert time.perf_counter() - start < 3.0 and "\n" not in str(err.value)
    # the same weights, cached (with their classifier head), are used offline
    full = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32)
    repo = timm.models.get_pretrained_cfg("vit_tiny_patch16_224").hf_hub_id
    file = _hf_cache_with(tmp_path / "hub", repo, full.state_dict())
    got = resolve_model("vit_tiny_patch16_224", weights="pretrained", **kw)
    assert got.weights == "timm pretrained" and not got.random_weights
    assert torch.equal(got.encoder.backbone.cls_token, full.cls_token)
    # and a weights file given directly goes through timm's loader (classifier dropped)
    by_file = resolve_model("vit_tiny_patch16_224", weights=str(file), **kw)
    assert torch.equal(by_file.encoder.backbone.pos_embed, full.pos_embed)
    assert by_file.weights == f"weights file {file}"
