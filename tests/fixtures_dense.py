"""Write tiny dense-task datasets in their real on-disk formats, at test time.

* :func:`write_seg_task`: a GEO-Bench segmentation task as ``geobench.dataset.write_sample_hdf5``
  writes one: per-band HDF5 datasets named by descriptor with a date suffix
  (``"04 - Red_2019-11-10"``), the 12 Sentinel-2 bands the GEO-Bench converters keep (B10
  dropped) plus ``"Cloud Probability"``, the mask as an HDF5 dataset ``"label"`` listed last
  in ``bands_order``, the ``"pickle"`` attribute, ``task_specs.pkl`` and
  ``default_partition.json``.
* :func:`write_oscd`: OSCD in its official layout (``… - Images/<city>/imgs_{1,2}_rect/B??.tif``,
  ``dates.txt``, ``train.txt``/``test.txt``, ``… - Train Labels/<city>/cm/cm.png`` 0/255).

Masks are drawn per 8 x 8 block and the class (or the change) is written into the pixel values
of B04/B03/B02, so a probe on 8 px patches can learn them.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np

from tests.fixtures_geobench import S2_DESCRIPTORS, fake_geobench

#: GEO-Bench's segmentation converters drop "10 - SWIR - Cirrus" and add a cloud band.
SEG_DESCRIPTORS = tuple(d for d in S2_DESCRIPTORS if not d.startswith("10 ")) + (
    "Cloud Probability",)
SEG_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
             "Cloud Probability")
#: Distinct DN level per stored band (band-order checks).
SEG_LEVELS = tuple(1000 + 100 * i for i in range(len(SEG_DESCRIPTORS) - 1)) + (5,)
OSCD_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
              "B11", "B12")
OSCD_LEVELS = {b: 1000 + 100 * i for i, b in enumerate(OSCD_BANDS)}
_SIGNAL = ("B04", "B03", "B02")


def block_mask(rng: np.random.Generator, size: int, n_classes: int, block: int = 8) -> np.ndarray:
    """``(size, size)`` int mask, constant on ``block`` x ``block`` squares."""
    cells = rng.integers(n_classes, size=(size // block, size // block))
    return np.kron(cells, np.ones((block, block), dtype=np.int64)).astype(np.int64)


def _seg_classes(gb):
    """Add the dataset classes GEO-Bench segmentation pickles reference to the stand-ins."""
    mod = sys.modules["geobench.dataset"]

    def seg_init(self, name, spatial_resolution, n_classes, class_names=None):
        self.name, self.spatial_resolution = name, spatial_resolution
        self.n_classes, self._class_names, self.alt_names = n_classes, class_names, ()

    def cloud_init(self, alt_names=(), spatial_resolution=None):
        self.name, self.alt_names, self.spatial_resolution = "Cloud Probability", alt_names, \
            spatial_resolution

    out = {}
    for name, init in (("SegmentationClasses", seg_init), ("CloudProbability", cloud_init)):
        c = type(name, (), {"__init__": init, "__module__": "geobench.dataset"})
        c.__qualname__ = name
        setattr(mod, name, c)
        out[name] = c
    return out


def write_seg_task(base: Path, name: str, *, counts=None, size: int = 32, n_classes: int = 3,
                   class_names=None, date: str = "2019-11-10", label_values=None,
                   seed: int = 0) -> dict:
    """Write ``base/segmentation_v1.0/<name>/``; return ``{"dir", "split", "image", "mask"}``.

    ``image`` holds the stored (C, H, W) DN arrays in file order, ``mask`` the (H, W) labels.
    ``label_values`` overrides every mask (e.g. to write out-of-range labels).
    """
    import h5py

    counts = counts or {"train": 8, "valid": 2, "test": 6}
    rng = np.random.default_rng(seed)
    task_dir = base / "segmentation_v1.0" / name
    task_dir.mkdir(parents=True)
    truth: dict = {"dir": task_dir, "split": {}, "image": {}, "mask": {}}
    with fake_geobench() as gb:
        extra = _seg_classes(gb)
        infos = [gb.Sentinel2(d, (), 10.0, 0.5) for d in SEG_DESCRIPTORS[:-1]] + \
            [extra["CloudProbability"]((), 10.0)]
        label_band = extra["SegmentationClasses"]("label", 10.0, n_classes, class_names)
        specs = gb.TaskSpecifications(dataset_name=name, patch_size=(size, size), n_time_steps=1,
                                      bands_info=infos, label_type=label_band,
                                      spatial_resolution=10)
        (task_dir / "task_specs.pkl").write_bytes(pickle.dumps(specs, protocol=4))
        partition: dict[str, list[str]] = {}
        k = 0
        for split, n in counts.items():
            for _ in range(n):
                sample = f"sample_{k}"
                k += 1
                partition.setdefault(split, []).append(sample)
                mask = block_mask(rng, size, n_classes) if label_values is None else \
                    np.full((size, size), label_values, np.int64)
                attrs: dict = {}
                order, image = [], []
                with h5py.File(task_dir / f"{sample}.hdf5", "w") as fp:
                    for info, desc, level in zip(infos, SEG_DESCRIPTORS, SEG_LEVELS, strict=True):
                        data = level * (1 + 0.05 * rng.random((size, size)))
                        canonical = SEG_BANDS[SEG_DESCRIPTORS.index(desc)]
                        if canonical in _SIGNAL:
                            data = data + 900.0 * mask
                        data = data.astype(np.int16)
                        key = f"{desc}_{date}"
                        fp.create_dataset(name=key, data=data)
                        attrs[key] = dict(date=None, date_id=None, spatial_resolution=10.0,
                                          band_info=info, meta_info=None, transform=None,
                                          crs=None)
                        order.append(key)
                        image.append(data.astype(np.float32))
                    fp.create_dataset(name="label", data=mask.astype(np.int16))
                    attrs["label"] = dict(date=None, date_id=None, spatial_resolution=10.0,
                                          band_info=label_band, meta_info=None, transform=None,
                                          crs=None)
                    order.append("label")
                    attrs["bands_order"] = order
                    fp.attrs["pickle"] = str(pickle.dumps(attrs))
                truth["split"][sample] = split
                truth["image"][sample] = np.stack(image)
                truth["mask"][sample] = mask
    (task_dir / "default_partition.json").write_text(json.dumps(partition))
    return truth


def _write_tif(path: Path, data: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(data.astype(np.uint16))).save(path)


def write_oscd(root: Path, *, cities=None, size: int = 48, coarse: bool = True,
               seed: int = 0) -> dict:
    """Write OSCD's official layout under ``root``; return ``{city: (images, mask)}``.

    ``images`` are the stored (2, 13, H, W) DN arrays on the 10 m grid (coarse bands as
    written before upsampling are not returned); with ``coarse`` the 60 m bands (B01, B09,
    B10) are written at 1/6 and the 20 m bands at 1/2 of the grid, as in the raw S2 tiles.
    """
    from PIL import Image

    cities = cities or {"train": ("abudhabi", "beihai", "cupertino"), "test": ("brasilia",
                                                                               "dubai")}
    if size % 8 or (coarse and size % 6):
        raise ValueError(f"size must be a multiple of 8 (and of 6 with coarse=True); got {size}")
    rng = np.random.default_rng(seed)
    images_root = root / "Onera Satellite Change Detection dataset - Images"
    images_root.mkdir(parents=True)
    res = {"B01": 6, "B09": 6, "B10": 6, "B05": 2, "B06": 2, "B07": 2, "B8A": 2, "B11": 2,
           "B12": 2}
    truth = {}
    for split, names in cities.items():
        (images_root / f"{split}.txt").write_text(",".join(names))
        labels = root / f"Onera Satellite Change Detection dataset - {split.capitalize()} Labels"
        for city in names:
            mask = block_mask(rng, size, 2)
            stack = np.zeros((2, len(OSCD_BANDS), size, size), np.float32)
            for t in (0, 1):
                folder = images_root / city / f"imgs_{t + 1}_rect"
                folder.mkdir(parents=True)
                for c, band in enumerate(OSCD_BANDS):
                    f = res.get(band, 1) if coarse else 1
                    small = OSCD_LEVELS[band] * (1 + 0.05 * rng.random((size // f, size // f)))
                    full = np.kron(small, np.ones((f, f)))
                    if band in _SIGNAL and t == 1:
                        full = full + 1500.0 * mask
                    _write_tif(folder / f"{band}.tif", full if f == 1 else small)
                    stack[t, c] = full.astype(np.uint16) if f == 1 else full
            (images_root / city / "dates.txt").write_text("date_1: 20151130\ndate_2: 20170930\n")
            (labels / city / "cm").mkdir(parents=True)
            Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(
                labels / city / "cm" / "cm.png")
            truth[city] = (stack, mask)
    return truth
