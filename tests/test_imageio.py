"""The one folder-image decoder and its two users (diagnose folders, ``python -m slimlib.train``)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from slimlib._imageio import read_image_chw


@pytest.fixture()
def images(tmp_path):
    rgb = np.arange(16 * 20 * 3, dtype=np.uint8).reshape(16, 20, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    ms = (np.arange(13 * 16 * 20, dtype=np.float32).reshape(16, 20, 13) * 10.0)
    # channels last, stored units (DN); and an 8-bit TIFF
    tifffile.imwrite(tmp_path / "b.tif", ms, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    return tmp_path, rgb, ms


def test_read_image_chw_keeps_stored_values(images):
    folder, rgb, ms = images
    arr, dtype = read_image_chw(folder / "a.png")
    assert arr.dtype == np.float32 and dtype == np.uint8
    np.testing.assert_array_equal(arr, rgb.transpose(2, 0, 1))
    arr, dtype = read_image_chw(folder / "b.tif")
    assert arr.shape == (13, 16, 20) and dtype == np.float32
    np.testing.assert_array_equal(arr, np.moveaxis(ms, -1, 0))


def test_train_cli_folder_dataset_scales_8bit_only(images):
    from slimlib.train.__main__ import ImageFolderImages

    folder, rgb, ms = images
    ds = ImageFolderImages(folder, size=4)
    assert [p.rsplit("/", 1)[-1] for p in ds.paths] == ["a.png", "b.tif", "c.tif"]
    png, tif, tif8 = ds[0], ds[1], ds[2]
    assert png.shape == (3, 4, 4) and float(png.max()) <= 1.0
    assert tif.shape == (13, 4, 4) and float(tif.max()) > 100.0  # stored units, not /255
    assert float(tif8.max()) <= 1.0  # uint8 TIFF divided by 255
    assert torch.is_floating_point(png)


def test_inputs_reader_units(images):
    from slimlib.data import read_image_file as _read

    folder, rgb, ms = images
    arr, units, bands = _read(folder / "a.png", None)
    assert units == "rgb01" and bands == ("R", "G", "B")
    assert float(arr.max()) == pytest.approx(rgb.max() / 255)
    s2 = tuple(f"B{i:02d}" for i in range(1, 14))
    arr, units, bands = _read(folder / "b.tif", s2)
    assert units == "reflectance" and bands == s2
    np.testing.assert_array_equal(arr, np.moveaxis(ms, -1, 0))  # float data: as stored
    with pytest.raises(ValueError, match="need bands="):
        _read(folder / "b.tif", None)


# ----------------------------------------------------------- units from the stored data type


def _write_folder(root, write, per_class=4, test=2):
    """An ImageFolder (train/test, two classes) whose images ``write(path, class, i)`` makes."""
    for split, n in (("train", per_class), ("test", test)):
        for c in range(2):
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                write(d, c, i)
    return root


def test_8bit_rgb_tiffs_are_divided_by_255_not_10000(tmp_path):
    """UC Merced's own format: 8-bit RGB TIFFs. Before: /10 000 and labelled reflectance."""
    from slimlib.diagnosis._inputs import resolve_data

    rng = np.random.default_rng(0)
    pixels = {}

    def write(d, c, i):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        pixels[str(d / f"{i}.tif")] = a
        tifffile.imwrite(d / f"{i}.tif", a, photometric="rgb")

    root = _write_folder(tmp_path / "ucm", write)
    for bands in (("R", "G", "B"), None):
        _, train, test = resolve_data(str(root), bands=bands, progress=False)
        assert train.units == "rgb01" and train.bands == ("R", "G", "B")
        first = train.paths[0]
        np.testing.assert_allclose(train.images[0].numpy(),
                                   pixels[first].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="8-bit data are always divided by 255"):
        resolve_data(str(root), scale="reflectance10000", progress=False)


def _png16(d, c, i):
    a = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200 + 1000 * c + i)
    Image.fromarray(a).save(d / f"{i}.png")


def test_16bit_grayscale_pngs_are_refused_without_scale_and_kept_with_it(tmp_path):
    """Before: clipped to 255, every pixel 1.0 (S = 1, test score at chance)."""
    from slimlib.diagnosis._inputs import resolve_data

    root = _write_folder(tmp_path / "g16", _png16)
    with pytest.raises(ValueError, match="say how to scale them: scale='reflectance10000'") as err:
        resolve_data(str(root), progress=False)
    assert "\n" not in str(err.value) and "--scale" in str(err.value)
    _, train, _ = resolve_data(str(root), scale="uint16max", progress=False)
    assert train.units == "rgb01" and train.images.shape[1:] == (3, 16, 16)
    stored = np.asarray(Image.open(train.paths[0]), dtype=np.float64)
    np.testing.assert_allclose(train.images[0, 0].numpy(), stored / 65535.0, rtol=1e-6)
    assert len(np.unique(train.images[0].numpy())) > 100  # not one clipped value
    _, one, _ = resolve_data(str(root), bands=("B08",), scale="reflectance10000",
                             progress=False)
    assert one.units == "reflectance" and one.images.shape[1] == 1
    np.testing.assert_allclose(one.images[0, 0].numpy(), stored / 1e4, rtol=1e-6)
    with pytest.raises(ValueError, match="units rgb01, which need bands R, G, B"):
        resolve_data(str(root), bands=("B08",), scale="uint16max", progress=False)


def test_16bit_tiffs_scale_by_band_names_or_by_scale(tmp_path):
    from slimlib.diagnosis._inputs import resolve_data

    def write(d, c, i):
        tifffile.imwrite(d / f"{i}.tif", np.full((8, 8, 3), 3000 + 100 * c + i, np.uint16),
                         photometric="rgb")

    root = _write_folder(tmp_path / "t16", write)
    with pytest.raises(ValueError, match="scale="):  # R G B 16-bit: the scaling is not known
        resolve_data(str(root), progress=False)
    _, s2, _ = resolve_data(str(root), bands=("B04", "B03", "B02"), progress=False)
    assert s2.units == "reflectance"  # Sentinel-2 names: documented DN / 10 000
    assert float(s2.images[0, 0, 0, 0]) == pytest.approx(0.3, abs=1e-6)
    _, rgb, _ = resolve_data(str(root), scale="uint16max", progress=False)
    assert rgb.units == "rgb01"
    assert float(rgb.images[0, 0, 0, 0]) == pytest.approx(3000 / 65535, rel=1e-6)


def test_float_tiffs_are_read_as_stored_whatever_their_range(tmp_path):
    """Units from data type and band names, never from ``max > 2``."""
    from slimlib.diagnosis._inputs import resolve_data

    def write(d, c, i):
        tifffile.imwrite(d / f"{i}.tif", np.full((2, 8, 8), 5.0 * (c + 1) + i, np.float32))

    root = _write_folder(tmp_path / "f32", write)
    _, train, _ = resolve_data(str(root), bands=("B04", "B08"), progress=False)
    assert train.units == "reflectance"
    assert sorted({float(v) for v in train.images[:, 0, 0, 0]}) == [5, 6, 7, 8, 10, 11, 12, 13]
    with pytest.raises(ValueError, match="unknown scale 'x'"):
        resolve_data(str(root), bands=("B04", "B08"), scale="x", progress=False)


def test_16bit_colour_png_is_refused(tmp_path):
    """Pillow would read a 16-bit colour PNG as 8 bits: refused, with what to do instead."""
    import struct
    import zlib

    from slimlib._imageio import decode

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + \
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + np.full((4, 3), 40000, ">u2").tobytes() for _ in range(4))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="16-bit colour PNG.*16-bit TIFF"):
        decode(png, name="c16.png")


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_a_corrupt_or_empty_image_is_named_in_one_line_and_nothing_is_written(tmp_path, content):
    import slimlib
    from tests.diagnosis.test_diagnose import FAST, _folder

    root = _folder(tmp_path / "d")
    bad = root / "train" / "class1" / "bad.png"
    if content == "truncated":
        content = (root / "train" / "class1" / "0.png").read_bytes()[:60]
    bad.write_bytes(content)
    with pytest.raises(ValueError) as err:
        slimlib.diagnose("tests.tiny_models:build", str(root), out=tmp_path / "rep", **FAST)
    message = str(err.value)
    assert str(bad) in message and "\n" not in message
    assert "empty file" in message if not content else "not a readable image" in message
    assert not (tmp_path / "rep").exists()


def test_one_image_per_class_is_a_one_line_error(tmp_path):
    """Before: ``KeyError: 'pop from an empty set'``."""
    import slimlib
    from tests.diagnosis.test_diagnose import FAST, _folder

    root = _folder(tmp_path / "one", per_class=1, split=False)
    with pytest.raises(ValueError, match="the test split has no images; put at least two"):
        slimlib.diagnose("tests.tiny_models:build", str(root), out=tmp_path / "rep", **FAST)
    assert not (tmp_path / "rep").exists()


def test_embedded_reader_uses_the_one_decoder(tmp_path):
    """The book's datasets decode through the same reader and refuse a non-8-bit RGB file."""
    from slimlib.data.embedded import _read_image

    _png16(tmp_path, 0, 0)
    with pytest.raises(ValueError, match="expected an 8-bit image; got uint16"):
        _read_image(tmp_path / "0.png", None, False, "rgb")
    Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(tmp_path / "rgb.png")
    assert _read_image(tmp_path / "rgb.png", None, False, "rgb").shape == (4, 5, 3)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        _read_image(tmp_path / "empty.png", None, False, "rgb")


def test_cli_16bit_pngs_exit_2_with_one_line_naming_scale(tmp_path):
    import subprocess
    import sys

    root = _write_folder(tmp_path / "g16", _png16)
    proc = subprocess.run([sys.executable, "-m", "slimlib", "diagnose", "--model",
                           "tests.tiny_models:build", "--data", str(root), "--out",
                           str(tmp_path / "rep"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scale" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "rep").exists()
