"""Dense tasks: GEO-Bench segmentation and OSCD loaders, the multi-level head, mIoU, sweeps."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

import slimlib.data as D
from slimlib import dense
from slimlib.data import geobench_seg, oscd
from slimlib.data._dense import IGNORE
from slimlib.dense._head import default_levels, to_grid, token_maps
from slimlib.specs import ModelSpec
from tests.fixtures_dense import (
    OSCD_BANDS,
    OSCD_LEVELS,
    SEG_BANDS,
    SEG_LEVELS,
    write_oscd,
    write_seg_task,
)

CLASSES3 = ("background", "crop", "tree")


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("geobench")
    truth = write_seg_task(base, "m-cashew-plant", class_names=list(CLASSES3))
    return base, truth


@pytest.fixture(scope="module")
def oscd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("oscd")
    return root, write_oscd(root)


def _vit():
    import timm

    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=0).eval()


def _spec(ds) -> ModelSpec:
    bands = ("B04", "B03", "B02")
    x = ds.images if ds.images.ndim == 4 else ds.images.flatten(0, 1)
    x = x[:, [ds.bands.index(b) for b in bands]]
    return ModelSpec(name="tiny-vit", family="cv", architecture="ViT 2x48", bands=bands,
                     mean=tuple(x.mean((0, 2, 3)).tolist()),
                     std=tuple(x.std((0, 2, 3)).tolist()), units="reflectance",
                     input_size=32, patch_size=8, embed_dim=48)


# ----------------------------------------------------------------------------- GEO-Bench seg


def test_geobench_seg_reads_bands_masks_and_splits(seg_root):
    base, truth = seg_root
    ds = D.load("m-cashew-plant", "train", root=base, cache=False)
    assert ds.task == "segmentation" and ds.bands == SEG_BANDS      # date suffix dropped
    assert ds.images.shape == (8, 13, 32, 32) and ds.masks.shape == (8, 32, 32)
    assert ds.masks.dtype == torch.int64 and ds.classes == CLASSES3  # from task_specs.pkl
    for i, path in enumerate(ds.paths):
        sample = path.removesuffix(".hdf5")
        assert truth["split"][sample] == "train"
        np.testing.assert_array_equal(ds.masks[i].numpy(), truth["mask"][sample])
        stored = truth["image"][sample]
        np.testing.assert_allclose(ds.images[i, :12].numpy() * 1e4, stored[:12], atol=0.01)
        np.testing.assert_allclose(ds.images[i, 12].numpy(), stored[12])  # cloud band as stored
    # band order: the distinct per-band levels (class signal only in B02-B04) come out in order
    plain = [i for i, b in enumerate(SEG_BANDS[:12]) if b not in ("B02", "B03", "B04")]
    medians = ds.images[:, plain].transpose(0, 1).flatten(1).median(1).values * 1e4
    levels = np.array([SEG_LEVELS[i] for i in plain])
    np.testing.assert_allclose(medians.numpy(), levels * 1.025, rtol=0.01)
    assert len(D.load("m-cashew-plant", "val", root=base, cache=False)) == 2
    assert len(D.load("m-cashew-plant", "test", root=base, limit=3, cache=False)) == 3
    assert D.info("m-SA-crop-type")["num_classes"] == 10
    assert D.info("m-cashew-plant")["num_classes"] == 7


def test_geobench_seg_errors(tmp_path, seg_root):
    base, truth = seg_root
    with pytest.raises(FileNotFoundError, match="segmentation_v1.0/m-SA-crop-type.*huggingface"):
        D.load("m-SA-crop-type", "train", root=base, cache=False)
    with pytest.raises(ValueError, match="no partition 'bogus'.*available: \\['default'\\]"):
        D.load("m-cashew-plant", "train", root=base, partition="bogus", cache=False)
    with pytest.raises(ValueError, match="has splits"):
        D.load("m-cashew-plant", "everything", root=base, cache=False)
    write_seg_task(tmp_path, "m-SA-crop-type", n_classes=10, label_values=12)
    with pytest.raises(ValueError, match=r"mask values span \[12, 12\].*10 classes"):
        D.load("m-SA-crop-type", "train", root=tmp_path, cache=False)


def test_geobench_seg_refuses_classification_samples(tmp_path):
    from tests.fixtures_geobench import write_task

    truth = write_task(tmp_path, "m-eurosat")
    sample = next(iter(truth["split"]))
    with pytest.raises(ValueError, match="no 'label' band"):
        geobench_seg.read_sample(truth["dir"] / f"{sample}.hdf5")


def test_downloads_fail_fast_offline(tmp_path, monkeypatch):
    from slimlib.data import _common

    monkeypatch.setattr(_common, "online", lambda host, *a, **k: False)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="huggingface.co is unreachable.*geo-bench-1.0"):
        D.load("m-cashew-plant", "train", root=tmp_path, download=True, cache=False)
    with pytest.raises(ConnectionError, match="OSCD.*unreachable.*Onera"):
        D.load("oscd", "train", root=tmp_path, download=True, cache=False)
    assert time.perf_counter() - start < 60


# ----------------------------------------------------------------------------- OSCD


def test_oscd_reads_two_dates_in_esa_band_order(oscd_root):
    root, truth = oscd_root
    ds = D.load("oscd", "train", root=root, tile=32, cache=False)
    assert ds.task == "change_detection" and ds.bands == OSCD_BANDS
    # 3 train cities of 48x48 -> 2x2 tiles of 32 each (padded to 64)
    assert ds.images.shape == (12, 2, 13, 32, 32) and ds.masks.shape == (12, 32, 32)
    assert any("resampled" in n for n in ds.notes)
    levels = ds.images[:, 0].transpose(0, 1).flatten(1).median(1).values * 1e4
    for c, band in enumerate(OSCD_BANDS):
        assert abs(float(levels[c]) - OSCD_LEVELS[band]) < 0.06 * OSCD_LEVELS[band], band
    stack, mask = truth["abudhabi"]
    np.testing.assert_array_equal(ds.masks[0].numpy(), mask[:32, :32])
    np.testing.assert_array_equal(ds.masks[3, :16, :16].numpy(), mask[32:, 32:])
    assert (ds.masks[3, 16:] == IGNORE).all() and (ds.masks[1, :, 16:] == IGNORE).all()
    b04 = OSCD_BANDS.index("B04")
    np.testing.assert_allclose(ds.images[0, :, b04].numpy() * 1e4, stack[:, b04, :32, :32],
                               atol=0.01)
    n_labelled = int((ds.masks != IGNORE).sum())
    assert n_labelled == 3 * 48 * 48                # every pixel scored once
    test = D.load("oscd", "test", root=root, tile=32, cache=False)
    assert {p.split("[")[0] for p in test.paths} == {"brasilia", "dubai"}
    assert D.info("oscd")["classes"] == ("no change", "change")


def test_oscd_layout_errors(tmp_path, oscd_root, monkeypatch):
    root, _ = oscd_root
    monkeypatch.setenv("SLIMLIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="oscd' is not a folder"):
        oscd.load_oscd("train")                       # default root: $SLIMLIB_DATA/oscd
    monkeypatch.delenv("SLIMLIB_DATA")
    with pytest.raises(FileNotFoundError, match="no 'Onera Satellite Change Detection dataset - "
                                                "Images/' folder.*imgs_1_rect/B01.tif"):
        D.load("oscd", "train", root=tmp_path, cache=False)
    with pytest.raises(FileNotFoundError, match="no OSCD root given"):
        oscd.load_oscd("train")
    broken = tmp_path / "broken"
    write_oscd(broken, cities={"train": ("paris",)}, coarse=False)
    (broken / oscd.IMAGES / "paris" / "imgs_2_rect" / "B8A.tif").unlink()
    with pytest.raises(FileNotFoundError, match=r"imgs_2_rect' lacks band files \['B8A.tif'\]"):
        D.load("oscd", "train", root=broken, cache=False)
    with pytest.raises(ValueError, match="no cities"):
        D.load("oscd", "train", root=root, cities=("atlantis",), cache=False)
    with pytest.raises(ValueError, match="tile must be"):
        D.load("oscd", "train", root=root, tile=3, cache=False)


# ----------------------------------------------------------------------------- metrics


def test_miou_matches_hand_computation():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    conf = dense.confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    # IoU0 = 1/(2+2-1) = 1/3, IoU1 = 3/(3+4-3) = 3/4, IoU2 = 1/(2+1-1) = 1/2
    np.testing.assert_allclose(dense.iou_per_class(conf), [1 / 3, 3 / 4, 1 / 2])
    assert dense.miou(conf) == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    absent = dense.confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 0]), 2)
    assert dense.miou(absent) == 1.0               # class 1 neither present nor predicted
    with pytest.raises(ValueError, match="outside"):
        dense.confusion_matrix(torch.tensor([5]), torch.tensor([0]), 2)


# ----------------------------------------------------------------------------- token maps


def test_token_maps_drop_prefix_tokens_and_match_the_encoder():
    vit = _vit()
    x = torch.randn(3, 3, 32, 32)
    maps = token_maps(vit, [x[:2], x[2:]], levels=[0, 1], dtype=torch.float32)
    assert maps.shape == (3, 2, 48, 4, 4)
    ref = vit.forward_features(x)[:, 1:]              # final norm of the last block's tokens
    got = vit.norm(maps[:, 1].flatten(2).transpose(1, 2))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
    grouped = torch.arange(2 * 2 * 3 * 1, dtype=torch.float32).reshape(1, 12, 1)
    # tokens ordered (h, w, G): patch (0, 0) holds 0, 1, 2 -> mean 1
    assert to_grid(grouped, 2, 2)[0, 0].tolist() == [[1.0, 4.0], [7.0, 10.0]]
    with pytest.raises(ValueError, match="patch grid"):
        to_grid(torch.zeros(1, 3, 2), 2, 2)           # fewer tokens than patches
    with pytest.raises(ValueError, match="patch grid"):
        to_grid(torch.zeros(1, 9, 2), 2, 2)           # neither h*w + prefix nor G*h*w
    assert default_levels(12) == [2, 5, 8, 11] and default_levels(2) == [0, 1]


def test_token_maps_on_galileo_groups():
    from slimlib import models

    enc = models.load("galileo-nano", pretrained=False)
    s = enc.spec.input_size
    maps = token_maps(enc, [torch.randn(1, enc.spec.in_chans, s, s)])
    grid = s // enc.patch_size
    assert maps.shape == (1, 4, 128, grid, grid)


# ----------------------------------------------------------------------------- probes


def test_segmentation_probe_learns_and_shuffled_control_does_not(seg_root):
    base, _ = seg_root
    train = D.load("m-cashew-plant", "train", root=base, cache=False)
    test = D.load("m-cashew-plant", "test", root=base, cache=False)
    vit, spec = _vit(), _spec(train)
    learned = dense.probe(vit, train, test, spec=spec, epochs=30, batch_size=4, device="cpu")
    # every image gets another image's mask (a cyclic shift: no image keeps its own)
    shuffled = dataclasses.replace(train, masks=train.masks[torch.roll(torch.arange(len(train)), 1)])
    control = dense.probe(vit, shuffled, test, spec=spec, epochs=30, batch_size=4, device="cpu")
    assert learned["value"] > 0.7, learned
    assert control["value"] < 0.35, control            # 3 classes: chance mIoU about 0.2
    again = dense.probe(vit, train, test, spec=spec, epochs=30, batch_size=4, device="cpu")
    assert again["value"] == pytest.approx(learned["value"])   # seeded
    with pytest.raises(ValueError, match="has no .spec"):
        dense.probe(vit, train, test)


def test_change_detection_probe_learns(oscd_root):
    root, _ = oscd_root
    train = D.load("oscd", "train", root=root, tile=32, cache=False)
    test = D.load("oscd", "test", root=root, tile=32, cache=False)
    result = dense.probe(_vit(), train, test, spec=_spec(train), epochs=30, batch_size=4,
                         device="cpu")
    assert set(result["iou"]) == {"no change", "change"}
    assert result["value"] > 0.7, result


def test_sweep_dense_returns_one_row_per_width(seg_root):
    from slimlib.sweeping import COLUMNS, retention

    base, _ = seg_root
    train = D.load("m-cashew-plant", "train", root=base, cache=False)
    test = D.load("m-cashew-plant", "test", root=base, cache=False)
    rows = dense.sweep_dense(_vit(), train, test, spec=_spec(train), widths=[0.25, 0.5, 1.0],
                             epochs=5, batch_size=4, device="cpu", progress=False)
    assert list(rows.columns) == list(COLUMNS) and len(rows) == 3
    assert rows["width"].tolist() == [0.25, 0.5, 1.0]
    assert set(rows["protocol"]) == {"segmentation_probe"} and set(rows["metric"]) == {"miou"}
    assert rows["rel_compute"].iloc[-1] == 1.0 and rows["rel_compute"].is_monotonic_increasing
    assert rows["d_k"].tolist() == ["4", "8", "16"]
    assert rows["value"].between(0, 1).all()
    assert len(retention(rows)) == 3


def test_availability_says_what_is_missing(tmp_path, seg_root, oscd_root):
    table = dense.availability(tmp_path)
    assert list(table["dataset"]) == ["m-cashew-plant", "m-SA-crop-type", "oscd"]
    assert not table["available"].any()
    assert table["reason"].str.contains("huggingface.co|rcdaudt").all()
    base, _ = seg_root
    found = dense.availability(base).set_index("dataset")
    assert found.loc["m-cashew-plant", "available"] and found.loc["m-cashew-plant", "reason"] == ""
    assert not found.loc["m-SA-crop-type", "available"]
    root, _ = oscd_root
    assert dense.availability(root).set_index("dataset").loc["oscd", "available"]
