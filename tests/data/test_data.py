"""Tests of slimlib.data: registry, embedded/GEO-Bench/ImageNet/online loaders, band handling."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import slimlib.data as D
from slimlib.data import _common
from slimlib.specs import ImageDataset, ModelSpec

sys.path.insert(0, str(Path(__file__).parent))
from tests.fixtures_geobench import (  # noqa: E402
    EUROSAT_FILE_ORDER_LEVELS,
    S2_DESCRIPTORS,
    poison_sample,
    write_task,
)


def spec(bands, units="reflectance", size=64, mean=None, std=None, name="test-spec"):
    n = len(bands)
    return ModelSpec(name=name, family="embedded", architecture="test", bands=tuple(bands),
                     mean=tuple(mean if mean is not None else [0.0] * n),
                     std=tuple(std if std is not None else [1.0] * n), units=units,
                     input_size=size, patch_size=8, embed_dim=8)


def manifest(root: Path, folder: str) -> list[dict[str, str]]:
    with open(root / folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def offline(monkeypatch):
    """Make every outgoing connection fail, as on a machine without internet."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by test")
    monkeypatch.setattr(_common.socket, "create_connection", refuse)


# ----------------------------------------------------------------------------- registry


def test_registry_lists_and_describes_every_dataset():
    names = D.list_datasets()
    for expected in ("eurosat-rgb", "eurosat-ms", "ucmerced", "cifar10", "synthetic-ms",
                     "m-eurosat", "m-brick-kiln", "m-so2sat", "m-bigearthnet", "imagenet-10",
                     "imagenet-100", "torchgeo-eurosat"):
        assert expected in names
    assert set(D.list_datasets("embedded")) == {"eurosat-rgb", "eurosat-ms", "ucmerced", "cifar10"}
    for name in names:
        meta = D.info(name)
        for key in ("classes", "bands", "units", "splits", "source", "licence", "citation", "kind"):
            assert key in meta, (name, key)
        assert meta["num_classes"] == len(meta["classes"]) >= 2
        assert meta["units"] in ("rgb01", "reflectance", "synthetic")
    assert D.info("m-so2sat")["num_classes"] == 17
    assert D.info("m-bigearthnet")["num_classes"] == 43 and D.info("m-bigearthnet")["multilabel"]
    assert D.info("imagenet-100")["num_classes"] == 100
    assert "synthetic" in D.info("synthetic-ms")["display_name"]


def test_registry_errors():
    with pytest.raises(ValueError, match="available: .*eurosat-rgb"):
        D.load("no-such-set")
    with pytest.raises(ValueError, match="available"):
        D.info("no-such-set")
    with pytest.raises(ValueError, match=r"splits \('train', 'test'\)"):
        D.load("synthetic-ms", split="valid")
    with pytest.raises(ValueError, match="unknown option.*bogus"):
        D.load("synthetic-ms", bogus=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        D.list_datasets("bogus")
    with pytest.raises(ValueError, match="limit_per_class"):
        D.load("eurosat-rgb", limit_per_class=0, root="/nonexistent")


# ----------------------------------------------------------------------------- embedded

COUNTS = [("eurosat-rgb", "train", 6400), ("eurosat-rgb", "test", 1600), ("eurosat-ms", "train", 216),
          ("eurosat-ms", "test", 54), ("ucmerced", "all", 168), ("ucmerced", "train", 126),
          ("ucmerced", "test", 42), ("cifar10", "train", 3000), ("cifar10", "test", 1000)]
FOLDER = {"eurosat-rgb": "eurosat_rgb", "eurosat-ms": "eurosat_ms", "ucmerced": "ucmerced"}


@pytest.mark.data
@pytest.mark.parametrize(("name", "split", "count"), COUNTS)
def test_embedded_counts_classes_and_labels_match_manifest(data_root, name, split, count):
    ds = D.load(name, split)
    assert len(ds) == count and not ds.synthetic and ds.notes
    assert ds.images.dtype == torch.float32 and ds.labels.dtype == torch.int64
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= (1.0 if ds.units == "rgb01"
                                                                       else 3.0)
    folder = FOLDER.get(name, f"cifar10_{split}")
    rows = {f"{folder}/{r['path']}": r for r in manifest(data_root, folder)}
    assert len(ds.paths) == count
    for path, label in zip(ds.paths, ds.labels.tolist(), strict=True):
        assert int(rows[path]["label"]) == label
        assert ds.classes[label] == rows[path]["class"]
    assert ds.classes == D.info(name)["classes"]


@pytest.mark.data
def test_embedded_splits_follow_the_manifests(data_root):
    train, test = D.load("eurosat-rgb", "train"), D.load("eurosat-rgb", "test")
    assert set(train.paths).isdisjoint(test.paths)
    assert torch.bincount(train.labels).tolist() == [640] * 10
    assert torch.bincount(test.labels).tolist() == [160] * 10
    split_of = {f"eurosat_rgb/{r['path']}": r["split"] for r in manifest(data_root, "eurosat_rgb")}
    assert {split_of[p] for p in test.paths} == {"test"}
    ms_split = {f"eurosat_ms/{r['path']}": r["source_split"]
                for r in manifest(data_root, "eurosat_ms")}
    assert {ms_split[p] for p in D.load("eurosat-ms", "test").paths} == {"test"}
    uc_train, uc_test = D.load("ucmerced", "train"), D.load("ucmerced", "test")
    assert set(uc_train.paths).isdisjoint(uc_test.paths)
    assert torch.bincount(uc_train.labels).tolist() == [6] * 21
    assert torch.bincount(uc_test.labels).tolist() == [2] * 21
    assert uc_train.images.shape[1:] == (3, 256, 256)
    # documented rule: per class, files sorted by name, the last two are the test split
    by_class: dict[str, list[str]] = {}
    for r in manifest(data_root, "ucmerced"):
        by_class.setdefault(r["class"], []).append(f"ucmerced/{r['path']}")
    assert set(uc_test.paths) == {p for ps in by_class.values() for p in sorted(ps)[6:]}


@pytest.mark.data
def test_eurosat_ms_has_13_bands_with_plausible_values(data_root):
    ds = D.load("eurosat-ms", "all")
    assert ds.bands == D.EUROSAT_MS_BANDS and ds.images.shape[1:] == (13, 64, 64)
    assert ds.units == "reflectance"
    med = ds.images.transpose(0, 1).flatten(1).median(dim=1).values
    band = dict(zip(ds.bands, med.tolist(), strict=True))
    assert band["B10"] < 0.01 < band["B04"]                   # cirrus band is nearly dark
    forest = ds.images[ds.labels == ds.classes.index("Forest")]
    nir, red = forest[:, ds.bands.index("B08")].mean(), forest[:, ds.bands.index("B04")].mean()
    assert nir > 3 * red                                       # vegetation: NIR ≫ red
    # B8A (last in the file) is a NIR band: it tracks B08, unlike B09 (water vapour)
    b8a, b08 = ds.images[:, 12].flatten(), ds.images[:, 7].flatten()
    assert torch.corrcoef(torch.stack([b8a, b08]))[0, 1] > 0.9


@pytest.mark.data
def test_rgb_gain_matches_the_eurosat_rendering(data_root):
    ms = D.load("eurosat-ms", "all")
    train, test = D.load("eurosat-rgb", "train"), D.load("eurosat-rgb", "test")   # cached
    images = torch.cat([train.images, test.images])
    index = {p.split("/", 1)[1].rsplit(".", 1)[0]: i for i, p in
             enumerate(train.paths + test.paths)}
    pairs = [(i, index[p.split("/", 1)[1].rsplit(".", 1)[0]]) for i, p in enumerate(ms.paths)]
    assert len(pairs) == 270
    refl = ms.images[[i for i, _ in pairs]][:, [3, 2, 1]].flatten()
    jpeg = images[[j for _, j in pairs]].flatten()
    keep = (jpeg > 0.05) & (jpeg < 0.95)
    ratio = float((jpeg[keep] / refl[keep]).median())
    assert abs(ratio / D.RGB_GAIN - 1) < 0.05


@pytest.mark.data
def test_limit_per_class_is_stratified_and_deterministic(data_root):
    a = D.load("eurosat-rgb", "test", limit_per_class=3)
    b = D.load("eurosat-rgb", "test", limit_per_class=3, cache=False)
    c = D.load("eurosat-rgb", "test", limit_per_class=3, seed=1)
    assert len(a) == 30 and torch.bincount(a.labels).tolist() == [3] * 10
    assert a.paths == b.paths and a.paths != c.paths
    assert any("subset" in n for n in a.notes)


@pytest.mark.data
def test_load_cache_shares_tensors_not_notes(data_root):
    a = D.load("eurosat-ms", "train")
    b = D.load("eurosat-ms", "train")
    assert a.images.data_ptr() == b.images.data_ptr()
    a.notes.append("local note")
    assert "local note" not in b.notes


def test_embedded_missing_root_says_how_to_get_data(monkeypatch, tmp_path):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="SLIMLIB_DATA.*synthetic-ms"):
        D.load("eurosat-rgb")
    with pytest.raises(FileNotFoundError, match="eurosat_ms/manifest.csv"):
        D.load("eurosat-ms", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load("cifar10", root=tmp_path / "missing")


def test_default_dataset(monkeypatch, tmp_path):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    assert D.default_dataset() == "synthetic-ms"
    with pytest.raises(FileNotFoundError, match="eurosat_rgb/manifest.csv"):
        D.default_dataset(tmp_path)  # a given root that lacks the data never becomes synthetic
    (tmp_path / "eurosat_rgb").mkdir()
    (tmp_path / "eurosat_rgb" / "manifest.csv").write_text("path,class,label,split\n")
    assert D.default_dataset(tmp_path) == "eurosat-rgb"


def _tiny_tree(data_root: Path, tmp_path: Path, n: int = 3) -> tuple[Path, list[dict[str, str]]]:
    """Copy ``n`` real EuroSAT RGB images (two classes) and write their manifest."""
    rows = [r for r in manifest(data_root, "eurosat_rgb") if r["label"] in ("0", "1")]
    rows = rows[:2] + [r for r in rows if r["label"] == "1"][: n - 2]
    for r in rows:
        dst = tmp_path / "eurosat_rgb" / r["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root / "eurosat_rgb" / r["path"], dst)
    return tmp_path, rows


def _write_manifest(root: Path, rows: list[dict[str, str]]) -> None:
    with open(root / "eurosat_rgb" / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.data
def test_unreadable_image_warns_per_file_and_in_total(data_root, tmp_path):
    root, rows = _tiny_tree(data_root, tmp_path)
    bad = dict(rows[0], path="Forest/Forest_broken.jpg", label="1", **{"class": "Forest"})
    broken = b"not a jpeg at all" * 10
    (root / "eurosat_rgb" / bad["path"]).write_bytes(broken)
    bad["sha256"] = hashlib.sha256(broken).hexdigest()
    gone = dict(rows[1], path="Forest/Forest_gone.jpg", label="1", **{"class": "Forest"})
    _write_manifest(root, rows + [bad, gone])
    with pytest.warns(UserWarning) as record:
        ds = D.load("eurosat-rgb", "all", root=root)
    messages = [str(w.message) for w in record]
    assert any("Forest_broken.jpg" in m and "unreadable" in m for m in messages)
    assert any("Forest_gone.jpg" in m and "missing" in m for m in messages)
    assert any("2 of 5 images skipped" in m for m in messages)
    assert len(ds) == 3 and any("2 of 5 images skipped" in n for n in ds.notes)
    assert "eurosat_rgb/Forest/Forest_broken.jpg" not in ds.paths


@pytest.mark.data
def test_checksum_mismatch_is_reported_unless_verify_is_off(data_root, tmp_path):
    root, rows = _tiny_tree(data_root, tmp_path)
    rows[0] = dict(rows[0], sha256="0" * 64)
    _write_manifest(root, rows)
    with pytest.warns(UserWarning) as record:
        assert len(D.load("eurosat-rgb", "all", root=root)) == 2
    assert any("sha256 does not match" in str(w.message) for w in record)
    assert any("1 of 3 images skipped" in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(D.load("eurosat-rgb", "all", root=root, verify=False)) == 3


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_needs_no_data_and_has_class_structure(monkeypatch):
    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    train, test = D.load("synthetic-ms", "train"), D.load("synthetic-ms", "test")
    assert train.synthetic and "synthetic" in train.display_name and train.units == "synthetic"
    assert train.bands == D.S2_BANDS and train.images.shape == (500, 13, 32, 32)
    assert torch.bincount(train.labels).tolist() == [50] * 10 and len(test) == 200
    assert float(train.images.min()) >= 0 and float(train.images.max()) <= 1
    assert not torch.equal(train.images[:200], test.images)
    again = D.load("synthetic-ms", "train", cache=False)
    other = D.load("synthetic-ms", "train", seed=1)
    assert torch.equal(train.images, again.images) and not torch.equal(train.images, other.images)
    # 5-NN on the mean spectrum: far above chance (0.1)
    f_tr, f_te = train.images.mean((2, 3)), test.images.mean((2, 3))
    nearest = train.labels[torch.cdist(f_te, f_tr).topk(5, largest=False).indices]
    acc = (nearest.mode(dim=1).values == test.labels).float().mean()
    assert acc > 0.7
    rgb = D.load("synthetic-rgb", "test", n_per_class=3, size=16)
    assert rgb.bands == ("R", "G", "B") and rgb.images.shape == (30, 3, 16, 16) and rgb.synthetic
    with pytest.raises(ValueError, match="num_classes"):
        D.load("synthetic-ms", num_classes=1)


# ----------------------------------------------------------------------------- GEO-Bench


@pytest.fixture
def geobench_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("GEO_BENCH_DIR", raising=False)
    truth = {
        "m-eurosat": write_task(tmp_path, "m-eurosat", classes=tuple("abcdefghij"),
                                levels=list(EUROSAT_FILE_ORDER_LEVELS)),
        "m-bigearthnet": write_task(tmp_path, "m-bigearthnet",
                                    classes=tuple(f"c{i}" for i in range(43)), multilabel=True,
                                    descriptors=tuple(d for d in S2_DESCRIPTORS
                                                      if not d.startswith("10"))),
        "m-so2sat": write_task(tmp_path, "m-so2sat", classes=tuple(f"z{i}" for i in range(17)),
                               s1=8, reflectance=True,
                               descriptors=tuple(S2_DESCRIPTORS[i] for i in
                                                 (1, 2, 3, 4, 5, 6, 7, 8, 11, 12))),
    }
    assert "geobench" not in sys.modules        # the reader must work without the package
    return tmp_path, truth


def _expected(truth, split):
    names = sorted(s for s, sp in truth["split"].items() if sp == split)
    return names, np.stack([truth["image"][s] for s in names]), [truth["label"][s] for s in names]


def test_geobench_single_label_reader(geobench_dir):
    root, truth = geobench_dir
    t = truth["m-eurosat"]
    for split in ("train", "valid", "test"):
        ds = D.load("m-eurosat", split, root=root)
        names, images, labels = _expected(t, split)
        assert [p.removesuffix(".hdf5") for p in ds.paths] == names
        np.testing.assert_allclose(ds.images.numpy(), images / 1e4, rtol=1e-6)
        assert ds.labels.tolist() == labels and ds.labels.dtype == torch.int64
        assert ds.classes == tuple("abcdefghij") and ds.units == "reflectance"
        # GEO-Bench labels the EuroSAT file order as ESA order; slimlib names it correctly
        assert ds.bands == D.EUROSAT_MS_BANDS
        assert any("geo-bench#28" in n for n in ds.notes)
    assert len(D.load("m-eurosat", "val", root=root)) == 2        # alias of "valid"
    with pytest.warns(UserWarning, match="band-order check failed"):
        raw = D.load("m-eurosat", "train", root=root, fix_band_order=False)
    assert raw.bands == D.S2_BANDS


def test_geobench_multilabel_reader_and_env_root(geobench_dir, monkeypatch):
    root, truth = geobench_dir
    monkeypatch.setenv("GEO_BENCH_DIR", str(root))
    ds = D.load("m-bigearthnet", "train")
    names, images, labels = _expected(truth["m-bigearthnet"], "train")
    assert ds.multilabel and ds.labels.shape == (len(names), 43)
    assert ds.labels.dtype == torch.float32
    np.testing.assert_array_equal(ds.labels.numpy(), np.stack(labels).astype(np.float32))
    np.testing.assert_allclose(ds.images.numpy(), images / 1e4, rtol=1e-6)
    assert "B10" not in ds.bands and len(ds.bands) == 12 and ds.num_classes == 43
    assert ds.classes[:2] == ("c0", "c1")                  # from task_specs (class_name attr)


def test_geobench_sentinel1_channels_and_reflectance_storage(geobench_dir):
    root, truth = geobench_dir
    ds = D.load("m-so2sat", "test", root=root)
    assert ds.bands[:8] == tuple(f"S1 {d.split(' - ', 1)[1]}" for d in
                                 ("01 - VH.Real", "02 - VH.Imaginary", "03 - VV.Real",
                                  "04 - VV.Imaginary", "05 - VH.LEE Filtered",
                                  "06 - VV.LEE Filtered", "07 - VH.LEE Filtered.Real",
                                  "08 - VV.LEE Filtered.Imaginary"))
    assert ds.bands[8:] == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    _, images, _ = _expected(truth["m-so2sat"], "test")
    np.testing.assert_allclose(ds.images.numpy(), images, rtol=1e-6)   # stored as reflectance
    assert any("already stored as reflectance" in n for n in ds.notes)


def test_geobench_subsets_and_errors(geobench_dir):
    root, _ = geobench_dir
    assert len(D.load("m-eurosat", "train", root=root, limit=4)) == 4
    sub = D.load("m-eurosat", "train", root=root, limit_per_class=1)
    assert torch.bincount(sub.labels).max() == 1
    with pytest.raises(ValueError, match="multi-label"):
        D.load("m-bigearthnet", "train", root=root, limit_per_class=1)
    with pytest.raises(ValueError, match="available: \\['default'\\]"):
        D.load("m-eurosat", "train", root=root, partition="0.01x_train")
    with pytest.raises(ValueError, match="band_names has 2"):
        D.load("m-eurosat", "train", root=root, band_names=("a", "b"))
    with pytest.raises(FileNotFoundError, match="GEO_BENCH_DIR|recursix/geo-bench-1.0"):
        D.load("m-brick-kiln", "train", root=root)
    with pytest.raises(ValueError, match="max_gib"):
        D.load("m-eurosat", "train", root=root, max_gib=1e-9)


def test_geobench_refuses_code_in_pickles(geobench_dir, tmp_path):
    root, truth = geobench_dir
    marker = tmp_path / "pwned"
    first = sorted(s for s, sp in truth["m-eurosat"]["split"].items() if sp == "train")[0]
    poison_sample(truth["m-eurosat"]["dir"] / f"{first}.hdf5", f"touch {marker}")
    with pytest.warns(UserWarning) as record:
        ds = D.load("m-eurosat", "train", root=root)
    assert any("refusing to unpickle" in str(w.message) for w in record)
    assert len(ds) == 5 and f"{first}.hdf5" not in ds.paths
    assert not marker.exists()


def test_geobench_download_fails_fast_offline(tmp_path, offline, monkeypatch):
    monkeypatch.delenv("GEO_BENCH_DIR", raising=False)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="huggingface.co is unreachable"):
        D.load("m-eurosat", "train", root=tmp_path, download=True)
    assert time.perf_counter() - start < 10
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="HF_HUB_OFFLINE"):
        D.load("m-so2sat", "train", root=tmp_path, download=True)


# ----------------------------------------------------------------------------- ImageNet


def _fake_imagenet(root: Path, wnids, per_class: int = 2) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for c, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(per_class):
                img = np.zeros((30, 60, 3), np.uint8)           # landscape, 60 wide
                img[:, :30] = (200, 10 * c, 0)                  # left half reddish
                img[:, 30:] = (0, 0, 250)                       # right half blue
                Image.fromarray(img).save(folder / f"{wnid}_{k}.JPEG", quality=95)


def test_imagenet_lists():
    for wnids, n in ((D.IMAGENET100_WNIDS, 100), (D.IMAGENET10_WNIDS, 10)):
        assert len(wnids) == len(set(wnids)) == n
        assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in wnids)
    assert D.IMAGENET100_WNIDS[:3] == ("n02869837", "n01749939", "n02488291")


def test_imagenet_folder_loader(tmp_path, monkeypatch):
    _fake_imagenet(tmp_path, D.IMAGENET10_WNIDS)
    monkeypatch.setenv("IMAGENET_DIR", str(tmp_path))
    ds = D.load("imagenet-10", "val", image_size=16)
    assert ds.images.shape == (20, 3, 16, 16) and ds.units == "rgb01"
    assert ds.classes == D.IMAGENET10_WNIDS
    assert ds.labels.tolist() == [c for c in range(10) for _ in range(2)]
    # shorter side resized, centre crop: the left quarter is red, the right quarter blue
    assert float(ds.images[:, 0, :, :3].mean()) > 0.7 and float(ds.images[:, 2, :, -3:].mean()) > 0.9
    assert len(D.load("imagenet-10", "train", image_size=16, limit_per_class=1)) == 10
    with pytest.raises(FileNotFoundError, match="100 class folders missing"):
        D.load("imagenet-100", "val", image_size=16)
    with pytest.raises(ValueError, match="max_gib"):
        D.load("imagenet-10", "val", image_size=16, max_gib=1e-9)
    monkeypatch.delenv("IMAGENET_DIR")
    with pytest.raises(FileNotFoundError, match="IMAGENET_DIR"):
        D.load("imagenet-10", "val")


# ----------------------------------------------------------------------------- torchgeo


def test_torchgeo_eurosat_missing_and_offline(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="download=True"):
        D.load("torchgeo-eurosat", "train", root=tmp_path)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="unreachable"):
        D.load("torchgeo-eurosat", "train", root=tmp_path, download=True)
    assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------- prepare

SSL4EO_ORDER = D.S2_BANDS          # B01..B08, B8A, B09..B12


def _file_order_dataset(size=8, units="reflectance") -> ImageDataset:
    """Channel k of every image holds the constant (k + 1) / 100: order is visible in values."""
    images = (torch.arange(13, dtype=torch.float32)[None, :, None, None] + 1).expand(
        4, 13, size, size).clone() / 100
    return ImageDataset("fake", "train", images, torch.arange(4), ("a", "b", "c", "d"),
                        D.EUROSAT_MS_BANDS, units)


def test_prepare_reorders_bands_by_name():
    ds = _file_order_dataset()
    out = D.prepare(ds, spec(SSL4EO_ORDER, size=8))
    expected = [D.EUROSAT_MS_BANDS.index(b) + 1 for b in SSL4EO_ORDER]
    assert torch.allclose(out[0, :, 0, 0], torch.tensor(expected) / 100)
    assert out[0, 8, 0, 0] == pytest.approx(0.13)      # B8A is the 13th file channel


@pytest.mark.data
def test_prepare_moves_b8a_on_real_eurosat_ms(data_root):
    ds = D.load("eurosat-ms", "test")
    out = D.prepare(ds, spec(SSL4EO_ORDER, size=64))
    assert torch.equal(out[:, 8], ds.images[:, 12])    # B8A
    assert torch.equal(out[:, 9], ds.images[:, 8])     # B09
    assert torch.equal(out[:, 12], ds.images[:, 11])   # B12


def test_prepare_resizes_with_antialias_and_normalises():
    ds = _file_order_dataset(size=48)
    mean, std = [0.1 * i for i in range(13)], [0.5 + 0.1 * i for i in range(13)]
    out = D.prepare(ds, spec(SSL4EO_ORDER, size=16, mean=mean, std=std))
    assert out.shape == (4, 13, 16, 16) and out.dtype == torch.float32
    expected = (torch.tensor([D.EUROSAT_MS_BANDS.index(b) + 1 for b in SSL4EO_ORDER]) / 100
                - torch.tensor(mean)) / torch.tensor(std)
    assert torch.allclose(out[:, :, 5, 7], expected.expand(4, 13), atol=1e-5)
    # a one-pixel checkerboard shrunk 3x must blur to grey (plain bilinear would alias)
    board = ((torch.arange(48)[:, None] + torch.arange(48)[None, :]) % 2).float()
    x = board.expand(1, 3, 48, 48).clone()
    rgb_spec = spec(("R", "G", "B"), units="rgb01", size=16)
    y = D.prepare(x, rgb_spec)
    assert float(y.std()) < 0.15 and abs(float(y.mean()) - 0.5) < 0.1


def test_prepare_rgb_only_on_multispectral_model_is_refused_unless_opted_in():
    rgb = ImageDataset("rgb", "train", torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, dtype=torch.long),
                       ("x",), ("R", "G", "B"), "rgb01")
    s = spec(SSL4EO_ORDER, size=4, mean=[0.1] * 13, std=[0.2] * 13)
    with pytest.raises(ValueError, match="rgb_policy='zero-fill'"):
        D.prepare(rgb, s)
    with pytest.warns(UserWarning, match="zero-fill"):
        out = D.prepare(rgb, s, rgb_policy="zero-fill")
    for band, _channel in (("B04", "R"), ("B03", "G"), ("B02", "B")):
        assert torch.allclose(out[:, SSL4EO_ORDER.index(band)],
                              torch.tensor((0.5 / D.RGB_GAIN - 0.1) / 0.2))
    others = [i for i, b in enumerate(SSL4EO_ORDER) if b not in ("B02", "B03", "B04")]
    assert torch.all(out[:, others] == 0)
    assert any("zero-fill" in n for n in rgb.notes)
    with pytest.raises(ValueError, match="rgb_policy must be one of"):
        D.prepare(rgb, s, rgb_policy="magic")


def test_prepare_aliases_rgb_only_for_reflectance():
    ms = _file_order_dataset()
    rgb_spec = spec(("R", "G", "B"), units="rgb01", size=8)
    out = D.prepare(ms, rgb_spec)                       # S2 → true colour rendering
    for j, band in enumerate(("B04", "B03", "B02")):
        value = (D.EUROSAT_MS_BANDS.index(band) + 1) / 100 * D.RGB_GAIN
        assert torch.allclose(out[:, j], torch.tensor(min(value, 1.0)))
    assert D.band_plan(ms.bands, ms.units, rgb_spec).describe()[0] == (
        "R", "B04 (alias) · RGB_GAIN, clipped")
    # R,G,B named reflectance tensor may feed B04,B03,B02; 8-bit RGB may not
    x = torch.rand(2, 3, 8, 8)
    s3 = spec(("B04", "B03", "B02"), size=8)
    assert torch.equal(D.prepare(x, s3, bands=("R", "G", "B"), units="reflectance"), x)
    with pytest.raises(ValueError, match="RGB-only"):
        D.prepare(x, s3, bands=("R", "G", "B"), units="rgb01")


def test_prepare_missing_bands_and_bad_inputs():
    twelve = tuple(b for b in D.S2_BANDS if b != "B10")
    x = torch.rand(2, 12, 8, 8)
    s = spec(SSL4EO_ORDER, size=8)
    with pytest.raises(ValueError, match=r"lacks bands \['B10'\]"):
        D.prepare(x, s, bands=twelve)
    with pytest.warns(UserWarning, match="B10"):
        out = D.prepare(x, s, bands=twelve, fill_missing=("B10",))
    assert torch.all(out[:, SSL4EO_ORDER.index("B10")] == 0)
    assert torch.equal(out[:, SSL4EO_ORDER.index("B11")], x[:, twelve.index("B11")])
    with pytest.raises(ValueError, match="12 channels but 'test-spec' expects 13"):
        D.prepare(x, s)
    with pytest.raises(ValueError, match="bands= names 13"):
        D.prepare(x, s, bands=D.S2_BANDS)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        D.prepare(torch.rand(13, 8, 8), s)
    with pytest.raises(ValueError, match="an ImageDataset carries"):
        D.prepare(_file_order_dataset(), s, bands=D.S2_BANDS)
    with pytest.raises(TypeError):
        D.prepare(np.zeros((1, 13, 8, 8)), s)
    with pytest.raises(ValueError, match="iter_prepared"):
        D.prepare(_file_order_dataset(), spec(SSL4EO_ORDER, size=224), max_gib=1e-6)
    with pytest.raises(ValueError, match="duplicate"):
        D.prepare(x, s, bands=("B01",) * 12)


def test_iter_prepared_matches_prepare_in_batches():
    ds = D.load("synthetic-ms", "test", n_per_class=2)
    s = spec(SSL4EO_ORDER, units="reflectance", size=16, mean=[0.1] * 13, std=[0.05] * 13)
    full = D.prepare(ds, s)
    batches = list(D.iter_prepared(ds, s, batch_size=6))
    assert [len(y) for _, y in batches] == [6, 6, 6, 2]
    assert torch.allclose(torch.cat([x for x, _ in batches]), full)
    assert torch.equal(torch.cat([y for _, y in batches]), ds.labels)
    with pytest.raises(ValueError, match="batch_size"):
        next(D.iter_prepared(ds, s, batch_size=0))


@pytest.mark.data
def test_real_rgb_dataset_refused_by_13_band_model(data_root):
    ds = D.load("cifar10", "test", limit_per_class=1)
    with pytest.raises(ValueError, match="RGB-only"):
        D.prepare(ds, spec(SSL4EO_ORDER, size=32))


@pytest.mark.data
def test_torchgeo_eurosat_reads_a_torchgeo_layout(data_root, tmp_path):
    """A few real EuroSAT MS files arranged as torchgeo expects them."""
    from torchgeo.datasets import EuroSAT

    rows = [r for r in manifest(data_root, "eurosat_ms") if r["class"] in ("Forest", "River")]
    rows = rows[:2] + [r for r in rows if r["class"] == "River"][:2]
    for r in rows:
        dst = tmp_path / EuroSAT.base_dir / r["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root / "eurosat_ms" / r["path"], dst)
    (tmp_path / EuroSAT.split_filenames["train"]).write_text(
        "\n".join(Path(r["path"]).name.replace(".tif", ".jpg") for r in rows) + "\n")
    ds = D.load("torchgeo-eurosat", "train", root=tmp_path)
    ms = D.load("eurosat-ms", "all")
    assert len(ds) == 4 and ds.bands == D.EUROSAT_MS_BANDS and ds.classes == ("Forest", "River")
    for path, image, label in zip(ds.paths, ds.images, ds.labels, strict=True):
        j = ms.paths.index(f"eurosat_ms/{Path(path).parent.name}/{Path(path).name}")
        assert torch.allclose(image, ms.images[j]) and ds.classes[label] == ms.classes[ms.labels[j]]


# ------------------------------------------------------------------------- data root setting
def test_a_wrong_data_root_raises_instead_of_falling_back_to_synthetic(monkeypatch, tmp_path):
    from slimlib._paths import data_root
    from slimlib.settings import Settings

    monkeypatch.delenv("SLIMLIB_DATA", raising=False)
    root = Settings.from_env().data
    assert data_root(root, required=False) is None  # unset: the synthetic fallback is allowed
    with pytest.raises(FileNotFoundError, match="No data root"):
        data_root(root)
    monkeypatch.setenv("SLIMLIB_DATA", str(tmp_path / "missing"))
    # the environment is read once, by Settings.from_env, which refuses a wrong root
    with pytest.raises(FileNotFoundError, match="does not exist.*unset it"):
        Settings.from_env()
    for required in (True, False):
        with pytest.raises(FileNotFoundError, match="does not exist.*unset SLIMLIB_DATA"):
            data_root(tmp_path / "missing", required=required)
    with pytest.raises(FileNotFoundError, match="from root="):
        data_root(tmp_path / "also-missing", required=False)
    assert data_root(tmp_path, required=False) == tmp_path


def test_relative_path_settings_are_made_absolute_for_chapter_kernels(monkeypatch, tmp_path):
    from slimlib.book import sphinxext
    from slimlib.settings import Settings

    base = tmp_path.resolve()
    (base / "data").mkdir()
    monkeypatch.chdir(base)
    monkeypatch.setenv("SLIMLIB_DATA", "data")
    monkeypatch.setenv("SLIMLIB_CACHE", "./cache")
    monkeypatch.setenv("SLIMLIB_RESULTS", str(base / "results"))  # already absolute
    settings = Settings.from_env()
    changed = {k: v for k, v in settings.as_env().items() if os.environ.get(k) != v}
    assert changed == {"SLIMLIB_DATA": str(base / "data"), "SLIMLIB_CACHE": str(base / "cache")}
    assert settings.results == base / "results"
    assert os.environ["SLIMLIB_DATA"] == "data"  # building settings changes no environment
    monkeypatch.chdir(base / "data")  # what a kernel started in another folder now sees
    assert Settings.from_env(settings.as_env()) == settings  # absolute: idempotent
    monkeypatch.setenv("SLIMLIB_DATA", "..")
    meta = sphinxext.setup(object())  # the book's extension (an entry point) writes them
    assert os.environ["SLIMLIB_DATA"] == str(base) and meta["parallel_read_safe"]


def test_default_profile_uses_the_test_images_we_have(data_root):
    """EuroSAT RGB: the manifest's 160 test images per class; EuroSAT 13-band and UC Merced:
    cross-fitted over every image (docs/evaluation.md)."""
    import numpy as np

    from slimlib.book import profiles
    from slimlib.probes._crossfit import CrossFitted
    from slimlib.sweeping import as_datasets

    profile = profiles.resolve("default", data_root=str(data_root))
    data = profiles.load_datasets(profile)
    rgb_train, rgb_test = data["eurosat-rgb"]
    assert len(rgb_test) == 1600
    assert np.bincount(rgb_test.labels.numpy()).tolist() == [160] * 10
    assert len(rgb_train) == 10 * profile.limit_per_class
    assert not isinstance(data["eurosat-rgb"], CrossFitted)
    swept = {d.name: d for d in as_datasets(data)}
    assert swept["eurosat-rgb"].folds == 0 and swept["eurosat-rgb"].n_test == 1600
    for name, n in (("eurosat-ms", 270), ("ucmerced", 168)):
        pair = data[name]
        assert isinstance(pair, CrossFitted)
        train, test = pair  # code that needs a fixed split still gets the source split
        assert len(train) + len(test) == n
        d = swept[name]
        assert d.folds == profile.folds == 5 and d.n_test == n
        assert d.n_train == round(n * 4 / 5)
        ids = d.fold_ids()
        assert np.bincount(ids).min() >= n // 5 - 1  # every fold holds its share
    assert "cross-fitted" in profiles.data_note(profile)


def test_crossfitted_sweep_on_real_ucmerced(data_root, tmp_path):
    """Every UC Merced image is a test image once: 168 outcomes in dataset order."""
    import numpy as np

    from slimlib.book import profiles
    from slimlib.probes._inputs import macro_accuracy
    from slimlib.sweeping import controls, decode, sweep

    profile = profiles.resolve("smoke", data_root=str(data_root), datasets=["ucmerced"])
    pair = profiles.load_datasets(profile)["ucmerced"]
    nets = controls.random_init_models("rs-moco-tiny", (0,))
    table = sweep(nets, {"ucmerced": pair}, widths=(1.0,), seeds=(0,),
                  out=tmp_path / "s.csv", metrics=False, progress=False, train_fraction=0.8)
    [row] = table.itertuples()
    assert row.n_test == 168 and row.n_train == 134
    out = decode(row.outcomes)
    np.testing.assert_array_equal(out.labels, pair.crossfit.dataset.labels.numpy())
    assert row.value == macro_accuracy(out.labels, out.preds)
    assert "cross-fitted: 5 stratified folds" in row.notes
    assert "first 6 train" not in row.notes  # the fixed split's note is not about these rows
