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
    from slimlib.inputs import _read

    folder, rgb, ms = images
    arr, units = _read(folder / "a.png", None)
    assert units == "rgb01" and float(arr.max()) == pytest.approx(rgb.max() / 255)
    arr, units = _read(folder / "b.tif", tuple(f"B{i:02d}" for i in range(1, 14)))
    assert units == "reflectance"
    np.testing.assert_allclose(arr, np.moveaxis(ms, -1, 0) / 10000.0, rtol=1e-6)
    with pytest.raises(ValueError, match="need bands"):
        _read(folder / "b.tif", None)
