"""Write tiny GEO-Bench tasks in the benchmark's on-disk format, at test time.

The files mimic what ``geobench.dataset.write_sample_hdf5`` and ``TaskSpecifications.save``
produce: one HDF5 dataset per band named by its descriptor, a file attribute ``"pickle"``
holding ``str(pickle.dumps(attrs))`` with objects of ``geobench`` classes, a
``task_specs.pkl`` and ``default_partition.json``. The ``geobench`` classes are stand-ins
registered in ``sys.modules`` only while writing, so the reader under test must cope
without the package (as it has to in real use).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np

S2_DESCRIPTORS = (
    "01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge",
    "06 - Vegetation Red Edge", "07 - Vegetation Red Edge", "08 - NIR",
    "08A - Vegetation Red Edge", "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR",
    "12 - SWIR",
)
S1_DESCRIPTORS = (
    "01 - VH.Real", "02 - VH.Imaginary", "03 - VV.Real", "04 - VV.Imaginary",
    "05 - VH.LEE Filtered", "06 - VV.LEE Filtered", "07 - VH.LEE Filtered.Real",
    "08 - VV.LEE Filtered.Imaginary",
)
#: Typical L1C DN levels per band in EuroSAT *file* order (B01..B12, B8A); B10 is darkest.
EUROSAT_FILE_ORDER_LEVELS = (1400, 1200, 1100, 1000, 1300, 2000, 2300, 2200, 700, 12, 1800,
                             1100, 2500)


@contextlib.contextmanager
def fake_geobench() -> Iterator[types.SimpleNamespace]:
    """Temporarily provide ``geobench.dataset/label/task`` classes for pickling."""
    mods = {n: types.ModuleType(n) for n in ("geobench", "geobench.dataset", "geobench.label",
                                             "geobench.task")}

    def cls(module: str, name: str, init):
        c = type(name, (), {"__init__": init, "__module__": module})
        c.__qualname__ = name
        setattr(mods[module], name, c)
        return c

    def band_init(self, name, alt_names=(), spatial_resolution=None, wavelength=None):
        self.name, self.alt_names = name, alt_names
        self.spatial_resolution, self.wavelength = spatial_resolution, wavelength

    def clf_init(self, n_classes, class_names=None):
        self.n_classes, self._class_names = n_classes, class_names

    def ml_init(self, n_classes, class_names=None):
        self.n_classes, self.class_name = n_classes, class_names   # GEO-Bench's spelling

    def task_init(self, **kw):
        self.__dict__.update(kw)

    ns = types.SimpleNamespace(
        Sentinel2=cls("geobench.dataset", "Sentinel2", band_init),
        Sentinel1=cls("geobench.dataset", "Sentinel1", band_init),
        Classification=cls("geobench.label", "Classification", clf_init),
        MultiLabelClassification=cls("geobench.label", "MultiLabelClassification", ml_init),
        TaskSpecifications=cls("geobench.task", "TaskSpecifications", task_init),
    )
    saved = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        yield ns
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def write_task(base: Path, name: str, *, counts=None, size: int = 8, classes=("a", "b", "c"),
               multilabel: bool = False, descriptors=S2_DESCRIPTORS, s1: int = 0,
               levels=None, reflectance: bool = False, seed: int = 0) -> dict:
    """Write ``base/classification_v1.0/<name>/`` and return the ground truth.

    Returns:
        ``{"dir": Path, "split": {sample: split}, "image": {sample: (C, H, W) float array as
        stored}, "label": {sample: int or 0/1 array}}``; S1 channels come first when ``s1``.
    """
    import affine
    import h5py

    counts = counts or {"train": 6, "valid": 2, "test": 3}
    rng = np.random.default_rng(seed)
    task_dir = base / "classification_v1.0" / name
    task_dir.mkdir(parents=True)
    levels = levels or [1000 + 100 * i for i in range(len(descriptors))]
    truth = {"dir": task_dir, "split": {}, "image": {}, "label": {}}
    with fake_geobench() as gb:
        infos = [gb.Sentinel1(d, (), 10.0) for d in S1_DESCRIPTORS[:s1]] + \
                [gb.Sentinel2(d, (), 10.0, 0.5) for d in descriptors]
        label_type = (gb.MultiLabelClassification if multilabel else gb.Classification)(
            len(classes), list(classes))
        specs = gb.TaskSpecifications(dataset_name=name, patch_size=(size, size), n_time_steps=1,
                                      bands_info=infos, label_type=label_type,
                                      spatial_resolution=10)
        (task_dir / "task_specs.pkl").write_bytes(pickle.dumps(specs, protocol=4))
        partition: dict[str, list[str]] = {}
        k = 0
        for split, n in counts.items():
            for _ in range(n):
                sample = f"id_{k:04d}"
                k += 1
                partition.setdefault(split, []).append(sample)
                if multilabel:
                    label = (rng.random(len(classes)) < 0.2).astype(np.int64)
                    label[rng.integers(len(classes))] = 1
                else:
                    label = int(rng.integers(len(classes)))
                image = []
                attrs: dict = {}
                order = []
                with h5py.File(task_dir / f"{sample}.hdf5", "w") as fp:
                    for i, info in enumerate(infos):
                        if i < s1:
                            data = rng.normal(0, 1, (size, size)).astype(np.float32)
                        elif reflectance:
                            lv = levels[i - s1] / 1e4
                            data = (lv * (1 + 0.2 * rng.random((size, size)))).astype(np.float32)
                        else:
                            lv = levels[i - s1]
                            data = (lv * (1 + 0.2 * rng.random((size, size)))).astype(np.int16)
                        fp.create_dataset(name=info.name, data=data)
                        attrs[info.name] = dict(
                            date=None, date_id=None, spatial_resolution=np.float64(10.0),
                            band_info=info, meta_info=None, crs=None,
                            transform=affine.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4e6))
                        order.append(info.name)
                        image.append(data.astype(np.float32))
                    attrs["label"] = label
                    attrs["bands_order"] = order
                    fp.attrs["pickle"] = str(pickle.dumps(attrs))
                truth["split"][sample] = split
                truth["image"][sample] = np.stack(image)
                truth["label"][sample] = label
    (task_dir / "default_partition.json").write_text(json.dumps(partition))
    return truth


class _Evil:
    """Pickles to a call of ``os.system``; a safe reader must refuse it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def poison_sample(path: Path, command: str) -> None:
    """Replace a sample's attributes with a pickle that would run ``command`` if trusted."""
    import h5py

    with h5py.File(path, "a") as fp:
        fp.attrs["pickle"] = str(pickle.dumps({"label": _Evil(command), "bands_order": []}))
