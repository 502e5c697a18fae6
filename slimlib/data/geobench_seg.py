"""Reader for GEO-Bench segmentation tasks (m-cashew-plant, m-SA-crop-type) in their HDF5 format.

A GEO-Bench segmentation sample is ``<task dir>/<sample>.hdf5`` written by
``geobench.dataset.write_sample_hdf5`` exactly like a classification sample (one HDF5 dataset
per band, named by its descriptor, e.g. ``"04 - Red"`` or ``"04 - Red_2019-11-10"`` for a
dated band; a file attribute ``"pickle"`` holding ``str(pickle.dumps(attrs))``), except that
the label is a *band*: an HDF5 dataset named ``"label"`` (``(H, W)`` integer class indices),
listed last in ``attrs["bands_order"]``, whose ``attrs["label"]`` entry holds band metadata
(a ``SegmentationClasses`` band info) instead of a class index. Tasks live under
``<base>/segmentation_v1.0/<task>/`` with ``task_specs.pkl`` and ``*_partition.json``.

Both tasks carry 12 Sentinel-2 bands (B10 dropped by the GEO-Bench converters) plus a
cloud-probability band; see docs/dense.md. The pickles are read with the restricted
unpickler of :mod:`slimlib.data.geobench_format` (no code can run from a tampered file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..settings import Settings, or_current
from ._common import SkipLog, check_memory, even_subset, parallel_map, require_online
from ._dense import DenseDataset
from .bands import is_s2
from .geobench import (
    ENV,
    HF_REPO,
    SPLIT_ALIASES,
    SPLITS,
    _check_s2_scale,
    candidate_bases,
    fetch_task,
)
from .geobench_format import _pickle_attr, _stack_bands, partition_samples, read_task_specs

SEG_DIRS = ("segmentation_v1.0", "segmentation_v0.9.1", "segmentation_v0.9.0")
HF_URL = f"https://huggingface.co/datasets/{HF_REPO}"
_GEOBENCH_CITE = ("A. Lacoste et al. GEO-Bench: Toward Foundation Models for Earth Monitoring. "
                  "NeurIPS 2023 Datasets and Benchmarks (arXiv:2306.03831).")

#: Metadata of the paper's two GEO-Bench segmentation tasks (class names as the GEO-Bench
#: converters define them; band names as stored, B10 absent).
TASKS: dict[str, dict[str, Any]] = {
    "m-cashew-plant": {
        "classes": ("no data", "well-managed plantation", "poorly-managed plantation",
                    "non-plantation", "residential", "background", "uncertain"),
        "bands": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11",
                  "B12", "Cloud Probability"),
        "image_size": 256,
        "source": "Smallholder Cashew Plantations in Benin (Jeon et al. 2021, Radiant MLHub "
                  "10.34911/rdnt.hfv20i) via GEO-Bench v1.0",
        "licence": "source: CC-BY-4.0 per its Radiant MLHub listing (unverified here); GEO-Bench "
                   "code Apache-2.0",
        "description": "S2 12 bands + cloud probability, 256x256, 7 classes (per-pixel)",
    },
    "m-SA-crop-type": {
        "classes": ("No Data", "Lucerne/Medics", "Planted pastures (perennial)", "Fallow",
                    "Wine grapes", "Weeds", "Small grain grazing", "Wheat", "Canola", "Rooibos"),
        "bands": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11",
                  "B12", "Cloud Probability"),
        "image_size": 256,
        "source": "Crop Type Classification South Africa (Western Cape Department of Agriculture"
                  ", Radiant MLHub ref_south_africa_crops_competition_v1) via GEO-Bench v1.0",
        "licence": "source: CC-BY-4.0 per its Radiant MLHub listing (unverified here); GEO-Bench "
                   "code Apache-2.0",
        "description": "S2 12 bands + cloud mask, 256x256, 10 crop classes (per-pixel)",
    },
}


def how_to_get(name: str) -> str:
    return (f"Download segmentation_v1.0/{name}*.zip from the Hugging Face dataset {HF_URL} "
            f"(slimlib.data.load({name!r}, download=True) does it on a machine with internet, "
            f"as does GEO-Bench's 'geobench-download' CLI), unzip it so that "
            f"<base>/segmentation_v1.0/{name}/ holds task_specs.pkl, default_partition.json and "
            f"the *.hdf5 samples, and pass root=<base> (or set ${ENV}).")


def find_task_dir(name: str, root: str | os.PathLike | None,
                  settings: Settings | None = None) -> Path | None:
    """``<base>/segmentation_v1.0/<name>`` (or an older benchmark folder) holding partitions."""
    for _, base in candidate_bases(root, settings):
        for cand in [base / sub / name for sub in SEG_DIRS] + [base / name, base]:
            if cand.is_dir() and cand.name == name and any(cand.glob("*_partition.json")):
                return cand
    return None


def problem(name: str, root: str | os.PathLike | None,
            settings: Settings | None = None) -> str | None:
    """Why ``name`` cannot be loaded from ``root`` (``None`` when it can be found)."""
    if find_task_dir(name, root, settings) is not None:
        return None
    tried = "; ".join(f"{setting} → {path}" for setting, path in candidate_bases(root, settings))
    return (f"GEO-Bench segmentation task {name!r} not found: looked for "
            f"<base>/segmentation_v1.0/{name}/ with *_partition.json under: {tried}")


def download_task(name: str, root: str | os.PathLike | None = None, *,
                  settings: Settings | None = None) -> Path:
    """Download and unpack one GEO-Bench v1.0 segmentation task from Hugging Face.

    Files go to ``root``, else the first GEO-Bench folder setting (``$GEO_BENCH_DIR``,
    ``$SLIMLIB_DATA/geobench``, the cache). Fails within seconds with ``ConnectionError`` when
    offline.
    """
    base = Path(root).expanduser() if root is not None else candidate_bases(None, settings)[0][1]
    require_online("huggingface.co", f"GEO-Bench {name!r}", how_to_get(name))
    return fetch_task(name, base / SEG_DIRS[0], partition_glob="*_partition.json")


def read_sample(path: str | os.PathLike
                ) -> tuple[list[tuple[str, np.ndarray, str | None]], np.ndarray]:
    """One segmentation sample: ``[(descriptor, (H, W) array, sensor), …]`` and the mask.

    Raises:
        ValueError: the file has no ``"label"`` band (e.g. a classification sample).
    """
    import h5py

    with h5py.File(path, "r") as fp:
        attrs = _pickle_attr(fp.attrs["pickle"]) if "pickle" in fp.attrs else {}
        order = list(attrs.get("bands_order") or sorted(fp.keys()))
        bands: list[tuple[str, np.ndarray, str | None]] = []
        mask = None
        for key in order:
            if key.startswith("label"):
                mask = np.asarray(fp[key][()])
                continue
            meta = attrs.get(key) or {}
            info = meta.get("band_info") if isinstance(meta, dict) else None
            sensor = "s1" if type(info).__name__ == "Sentinel1" else None
            bands.append((key, np.asarray(fp[key][()]), sensor))
    if mask is None:
        raise ValueError(f"{path}: no 'label' band; this is not a GEO-Bench segmentation sample "
                         "(classification tasks load with slimlib.data.load('m-eurosat', …))")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{path}: label band has shape {mask.shape}; expected (H, W)")
    return bands, mask


def _resize(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(images)[None]
    return torch.nn.functional.interpolate(t, size=shape, mode="bilinear",
                                           align_corners=False)[0].numpy()


def load_geobench_seg(name: str, split: str, root: str | os.PathLike | None = None, *,
                      partition: str = "default", limit: int | None = None,
                      download: bool = False, registry_classes: tuple[str, ...] = (),
                      max_gib: float | None = 32.0,
                      settings: Settings | None = None) -> DenseDataset:
    """Load one split of a GEO-Bench segmentation task into memory.

    Args:
        name: task folder name, ``"m-cashew-plant"`` or ``"m-SA-crop-type"``.
        split: ``"train"``, ``"valid"`` or ``"test"`` of ``partition``.
        root: folder holding ``segmentation_v1.0/`` (default ``$GEO_BENCH_DIR``, then
            ``$SLIMLIB_DATA/geobench``, then the slimlib cache).
        partition: partition file prefix (``"default"``, ``"0.10x_train"``, …).
        limit: keep at most this many samples, evenly spaced over the split.
        download: fetch the task from Hugging Face when it is missing.
        max_gib: refuse to allocate more float32 image memory than this.

    Returns:
        a :class:`~slimlib.data._dense.DenseDataset` (``task="segmentation"``); Sentinel-2
        channels in reflectance (DN / 10 000), other channels as stored.
    """
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise ValueError(f"{name!r} has splits {SPLITS}; got split={split!r}")
    if root is None:
        settings = or_current(settings)
    task_dir = find_task_dir(name, root, settings)
    if task_dir is None:
        if not download:
            raise FileNotFoundError(f"{problem(name, root, settings)}. {how_to_get(name)}")
        task_dir = download_task(name, root, settings=settings)
    names = partition_samples(task_dir, name, partition, split)
    samples = [names[i] for i in even_subset(len(names), limit)]
    if not samples:
        raise ValueError(f"{name}/{split}: the partition lists no samples")
    specs = read_task_specs(task_dir)

    def read(sample: str) -> tuple[np.ndarray, list[str], bool, np.ndarray] | str:
        try:
            bands, mask = read_sample(task_dir / f"{sample}.hdf5")
            image, names, resampled = _stack_bands(bands)
            if image.shape[-2:] != mask.shape:
                image, resampled = _resize(image, mask.shape), True
            return image, names, resampled, mask
        except FileNotFoundError:
            return "file is missing"
        except Exception as err:  # noqa: BLE001 - reported per file by SkipLog
            return f"unreadable ({type(err).__name__}: {err})"

    results = parallel_map(read, samples, desc=f"read {name}/{split}", threads=2)
    log = SkipLog(name)
    ok = [i for i, r in enumerate(results) if not isinstance(r, str)]
    if not ok:
        raise FileNotFoundError(f"{name}/{split}: none of the {len(samples)} samples in "
                                f"{task_dir} could be read (first error: {results[0]})")
    ref_names, ref_shape = results[ok[0]][1], results[ok[0]][0].shape
    check_memory(len(ok), ref_shape, max_gib, f"{name}/{split}", "pass limit= or a larger max_gib=")
    keep = []
    for i, (sample, res) in enumerate(zip(samples, results, strict=True)):
        if isinstance(res, str):
            log.skip(f"{sample}.hdf5", res)
        elif res[1] != ref_names or res[0].shape != ref_shape:
            log.skip(f"{sample}.hdf5", f"bands {res[1]} / shape {res[0].shape} differ from "
                                       f"{ref_names} / {ref_shape}")
        else:
            keep.append(i)
    notes = log.finish(len(samples))
    images = torch.from_numpy(np.stack([results[i][0] for i in keep]).astype(np.float32))
    masks = torch.from_numpy(np.stack([results[i][3] for i in keep]).astype(np.int64))
    if any(results[i][2] for i in keep):
        notes.append("some bands had a coarser grid and were resampled bilinearly to the mask grid")
    names = list(ref_names)
    s2_idx = [i for i, n in enumerate(names) if is_s2(n)]
    if _check_s2_scale(images, names) != 1.0:
        images[:, s2_idx] /= 1e4
        notes.append("Sentinel-2 channels stored as DN; divided by 10000 (units reflectance).")
    classes = specs.get("classes") or tuple(registry_classes)
    n_classes = max(len(classes), int(specs.get("n_classes") or 0))
    if int(masks.max()) >= n_classes or int(masks.min()) < 0:
        raise ValueError(f"{name}/{split}: mask values span [{int(masks.min())}, "
                         f"{int(masks.max())}] but the task has {n_classes} classes {classes}")
    if len(classes) < n_classes:
        classes = tuple(f"class-{i}" for i in range(n_classes))
        notes.append("class names not found in task_specs.pkl or the registry; generic names used")
    if limit is not None:
        notes.append(f"subset: limit={limit} (evenly spaced)")
    return DenseDataset(name=name, split=split, images=images, masks=masks,
                        classes=tuple(classes), bands=tuple(names), units="reflectance",
                        task="segmentation", paths=tuple(f"{samples[i]}.hdf5" for i in keep),
                        notes=notes)


def registry_entries(entry_type: type) -> list[Any]:
    """Registry entries (``slimlib.data.registry.DatasetInfo``) of the segmentation tasks."""
    from functools import partial

    return [entry_type(
        name=name, kind="local", classes=meta["classes"], bands=meta["bands"],
        units="reflectance", splits=SPLITS, split_aliases=SPLIT_ALIASES,
        source=meta["source"], licence=meta["licence"], citation=_GEOBENCH_CITE,
        loader=partial(load_geobench_seg, name, registry_classes=meta["classes"]),
        image_size=meta["image_size"],
        root_setting=f"root= or ${ENV} or $SLIMLIB_DATA/geobench (segmentation_v1.0/)",
        description="DENSE (semantic segmentation, mIoU; slimlib.dense): " + meta["description"],
    ) for name, meta in TASKS.items()]
