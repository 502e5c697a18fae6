"""Reader for GEO-Bench classification tasks in their on-disk HDF5 format.

GEO-Bench (Lacoste et al., NeurIPS 2023 Datasets & Benchmarks) stores every sample as
``<task dir>/<sample>.hdf5``: one HDF5 dataset per band, named by the band descriptor
(``"04 - Red"``, ``"08A - Vegetation Red Edge"``, …), and a file attribute ``"pickle"``
holding ``str(pickle.dumps(attrs))`` where ``attrs`` has ``"bands_order"``, the
``"label"`` (an ``int``, or a 0/1 array for multi-label tasks) and per-band metadata
objects of the ``geobench`` package. A task folder also has ``task_specs.pkl`` (label
type and class names) and ``<partition>_partition.json`` (``train``/``valid``/``test``
sample names; ``default_partition.json`` is the benchmark's split).

This module reads that format with ``h5py`` alone; it does not import ``geobench``
(whose releases pin ``pandas<2``). The pickles are opened with a restricted unpickler
that rebuilds numpy arrays, dates and containers and turns ``geobench``/``ccb``/
``affine``/``rasterio`` objects into inert attribute holders; anything else is refused,
so a tampered file cannot run code.
"""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..settings import DATA_ENV, GEO_BENCH_ENV, Settings, or_current
from ..specs import ImageDataset
from ._common import (
    SkipLog,
    check_limit,
    check_memory,
    even_subset,
    parallel_map,
    require_online,
    stratified_subset,
)
from .bands import EUROSAT_MS_BANDS, S2_BANDS, geobench_band_name, is_rgb, is_s2

ENV = GEO_BENCH_ENV
HF_REPO = "recursix/geo-bench-1.0"
BENCHMARK_DIRS = ("classification_v1.0", "classification_v0.9.1", "classification_v0.9.0")
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}
_DOWNLOAD_HOW = (
    f"Get the data with slimlib.data.load(name, download=True) on a machine with internet "
    f"(Hugging Face dataset {HF_REPO}, files classification_v1.0/<task>.zip), or with "
    f"GEO-Bench's own 'geobench-download' CLI, then point root= or ${ENV} at the folder holding "
    f"classification_v1.0/."
)

# --------------------------------------------------------------------------- restricted pickle


class _Opaque:
    """Inert stand-in for a pickled ``geobench``/``rasterio``/``affine`` object."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            self.__dict__["_init"] = (args, kwargs)

    def __setstate__(self, state: Any) -> None:
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in parts:
            if isinstance(part, dict):
                self.__dict__.update({str(k): v for k, v in part.items()})
            elif part is not None:
                self.__dict__["_state"] = part

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} (opaque)>"


_OPAQUE_MODULES = ("geobench", "ccb", "affine", "rasterio")
_opaque_types: dict[tuple[str, str], type] = {}


def _np_guard_dtype(*args: Any, **kwargs: Any) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object dtypes are not allowed in GEO-Bench metadata")
    return dtype


def _np_guard_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"ndarray subclass {subtype!r} is not allowed")
    from numpy._core import multiarray

    return multiarray._reconstruct(subtype, shape, dtype)


def _np_guard_scalar(dtype: Any, data: Any = None) -> Any:
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError("object scalars are not allowed")
    from numpy._core import multiarray

    return multiarray.scalar(dtype, data) if data is not None else multiarray.scalar(dtype)


def _np_guard_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed")
    from numpy._core import numeric

    return numeric._frombuffer(buf, dtype, shape, order)


_NUMPY = {("numpy", "dtype"): _np_guard_dtype, ("numpy", "ndarray"): np.ndarray}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY[(_mod, "_reconstruct")] = _np_guard_reconstruct
    _NUMPY[(_mod, "scalar")] = _np_guard_scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY[(_mod, "_frombuffer")] = _np_guard_frombuffer
_ALLOWED = {
    ("datetime", "date"), ("datetime", "datetime"), ("datetime", "time"),
    ("datetime", "timedelta"), ("datetime", "timezone"), ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "object"), ("copyreg", "_reconstructor"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY:
            return _NUMPY[(module, name)]
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.split(".")[0] in _OPAQUE_MODULES:
            key = (module, name)
            if key not in _opaque_types:
                _opaque_types[key] = type(name, (_Opaque,), {"__module__": module})
            return _opaque_types[key]
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: not part of the GEO-Bench format")


def _unpickle(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


def _pickle_attr(raw: Any) -> dict[str, Any]:
    """Decode the ``"pickle"`` attribute (``str(bytes)`` written by GEO-Bench)."""
    if isinstance(raw, bytes | np.bytes_):
        raw = raw.decode("latin-1")
    data = ast.literal_eval(str(raw))
    if not isinstance(data, bytes):
        raise ValueError("the 'pickle' attribute does not hold a bytes literal")
    attrs = _unpickle(data)
    if not isinstance(attrs, dict):
        raise ValueError(f"the 'pickle' attribute holds {type(attrs).__name__}, not a dict")
    return attrs


# --------------------------------------------------------------------------- samples


def read_sample(path: str | os.PathLike) -> tuple[list[tuple[str, np.ndarray, str | None]], Any]:
    """Read one GEO-Bench ``.hdf5`` sample.

    Returns:
        ``[(descriptor, array (H, W) or (H, W, n), sensor), …]`` in ``bands_order`` and the
        raw label (``int`` or 1-D 0/1 array). ``sensor`` is ``"s1"`` for Sentinel-1 bands.
    """
    import h5py

    with h5py.File(path, "r") as fp:
        attrs = _pickle_attr(fp.attrs["pickle"]) if "pickle" in fp.attrs else {}
        order = list(attrs.get("bands_order") or sorted(fp.keys()))
        bands: list[tuple[str, np.ndarray, str | None]] = []
        label = attrs.get("label")
        for key in order:
            if key.startswith("label"):
                raise ValueError(f"{path}: has a dense label band {key!r}; only classification "
                                 "tasks are supported")
            meta = attrs.get(key) or {}
            info = meta.get("band_info") if isinstance(meta, dict) else None
            sensor = "s1" if type(info).__name__ == "Sentinel1" else None
            bands.append((key, np.asarray(fp[key][()]), sensor))
    if label is None:
        raise ValueError(f"{path}: no label in the sample attributes")
    return bands, label


def _stack_bands(bands: list[tuple[str, np.ndarray, str | None]]
                 ) -> tuple[np.ndarray, list[str], bool]:
    """(C, H, W) float32, canonical names, whether some bands were resampled."""
    arrays, names = [], []
    for key, data, sensor in bands:
        canonical = geobench_band_name(key, sensor)
        if data.ndim == 3:                                         # a MultiBand (H, W, n)
            for i in range(data.shape[2]):
                arrays.append(data[..., i])
                names.append(f"{canonical}[{i}]")
        else:
            arrays.append(data)
            names.append(canonical)
    shape = max((a.shape for a in arrays), key=lambda s: s[0] * s[1])
    resampled = False
    out = np.empty((len(arrays), *shape), np.float32)
    for i, a in enumerate(arrays):
        if a.shape != shape:
            t = torch.from_numpy(np.asarray(a, np.float32))[None, None]
            a = torch.nn.functional.interpolate(t, size=shape, mode="bilinear",
                                                align_corners=False)[0, 0].numpy()
            resampled = True
        out[i] = a
    return out, names, resampled


def partition_samples(task_dir: Path, name: str, partition: str, split: str) -> list[str]:
    """The sample names of ``split`` in ``<task_dir>/<partition>_partition.json`` (GEO-Bench's
    partition files, shared by the classification and segmentation loaders).

    Raises:
        ValueError: no such partition file (the available ones are named) or no such split.
    """
    part_file = task_dir / f"{partition}_partition.json"
    if not part_file.is_file():
        available = sorted(p.name.removesuffix("_partition.json")
                           for p in task_dir.glob("*_partition.json"))
        raise ValueError(f"{name}: no partition {partition!r} in {task_dir}; available: {available}")
    parts = json.loads(part_file.read_text())
    if split not in parts:
        raise ValueError(f"{name}: partition {partition!r} has splits {sorted(parts)}; got {split!r}")
    return list(parts[split])


def read_task_specs(task_dir: Path) -> dict[str, Any]:
    """Class names and label kind from ``task_specs.pkl`` (``{}`` when absent or unreadable)."""
    path = task_dir / "task_specs.pkl"
    if not path.is_file():
        return {}
    try:
        specs = _unpickle(path.read_bytes())
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"{path}: cannot read task specs ({err}); using registry class names",
                      UserWarning, stacklevel=3)
        return {}
    label_type = getattr(specs, "label_type", None)
    names = None
    for attr in ("_class_names", "class_names", "class_name"):
        value = getattr(label_type, attr, None)
        if value is not None and not isinstance(value, property):
            names = tuple(str(v) for v in value)
            break
    return {
        "classes": names,
        "n_classes": getattr(label_type, "n_classes", None),
        "label_type": type(label_type).__name__ if label_type is not None else None,
    }


# --------------------------------------------------------------------------- locating


def _cache_base(settings: Settings) -> Path:
    return Path(settings.cache) / "geobench"


def candidate_bases(root: str | os.PathLike | None, settings: Settings | None = None
                    ) -> list[tuple[str, Path]]:
    """Folders searched for GEO-Bench, as ``(setting, path)`` in priority order: ``root``
    when given, else ``settings.geobench`` (``$GEO_BENCH_DIR``), ``<settings.data>/geobench``
    and ``<settings.cache>/geobench``."""
    if root is not None:
        return [("root=", Path(root).expanduser())]
    settings = or_current(settings)
    bases = []
    if settings.geobench is not None:
        bases.append((f"${ENV}", Path(settings.geobench)))
    if settings.data is not None:
        bases.append((f"${DATA_ENV}/geobench", Path(settings.data) / "geobench"))
    bases.append(("cache", _cache_base(settings)))
    return bases


def _is_task_dir(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*_partition.json"))


def find_task_dir(name: str, root: str | os.PathLike | None,
                  settings: Settings | None = None) -> Path | None:
    for _, base in candidate_bases(root, settings):
        for cand in [base / sub / name for sub in BENCHMARK_DIRS] + [base / name, base]:
            if _is_task_dir(cand) and cand.name == name:
                return cand
    return None


def _missing_error(name: str, root: str | os.PathLike | None,
                   settings: Settings | None = None) -> FileNotFoundError:
    tried = "; ".join(f"{setting} → {path}" for setting, path in candidate_bases(root, settings))
    return FileNotFoundError(
        f"GEO-Bench task {name!r} not found (looked for <base>/classification_v1.0/{name}/ with "
        f"*_partition.json under: {tried}). {_DOWNLOAD_HOW}")


def download_task(name: str, root: str | os.PathLike | None = None, *,
                  settings: Settings | None = None) -> Path:
    """Download and unpack one GEO-Bench v1.0 classification task from Hugging Face.

    Fails within seconds with ``ConnectionError`` when offline. Files go to ``root``, else
    ``$GEO_BENCH_DIR``, else ``$SLIMLIB_CACHE/geobench``; returns the task folder.
    """
    if root is None:
        settings = or_current(settings)
    base = Path(root if root is not None else settings.geobench or _cache_base(settings)
                ).expanduser()
    require_online("huggingface.co", f"GEO-Bench {name!r}",
                   f"Copy classification_v1.0/{name}.zip from {HF_REPO} by other means and unzip "
                   f"it under {base / 'classification_v1.0'}.")
    return fetch_task(name, base / BENCHMARK_DIRS[0], partition_glob="default_partition.json")


def fetch_task(name: str, bench: Path, *, partition_glob: str) -> Path:
    """Download the ``<bench.name>/<name>*.zip`` files of GEO-Bench from Hugging Face, unpack
    them in a temporary folder under ``bench`` and move the one task folder (the folder holding
    the file matching ``partition_glob``) to ``bench/name`` (replacing an older copy).
    Shared by the classification and the segmentation loaders; returns ``bench/name``."""
    from huggingface_hub import HfApi, hf_hub_download

    prefix = f"{bench.name}/{name}"
    files = [f for f in HfApi().list_repo_files(HF_REPO, repo_type="dataset")
             if f.startswith(prefix) and f.endswith(".zip")]
    if not files:
        raise FileNotFoundError(f"{HF_REPO} has no {prefix}*.zip")
    bench.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bench) as tmp:
        for f in files:
            local = hf_hub_download(HF_REPO, filename=f, repo_type="dataset", local_dir=tmp)
            with zipfile.ZipFile(local) as zf:
                zf.extractall(Path(tmp) / "unpacked")
        found = sorted({p.parent for p in (Path(tmp) / "unpacked").rglob(partition_glob)})
        if len(found) != 1:
            raise ValueError(f"unexpected layout of {files}: {len(found)} task folders")
        target = bench / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(found[0], target)
    return target


# --------------------------------------------------------------------------- loading


def _check_s2_scale(images: torch.Tensor, names: list[str]) -> float:
    """Divisor that brings the S2 channels to reflectance: 10 000 for DN, 1 if already so."""
    idx = [i for i, n in enumerate(names) if is_s2(n)]
    if not idx:
        return 1.0
    sample = images[: min(64, len(images))][:, idx]
    return 1e4 if float(sample.median()) > 20 else 1.0


def _band_order_check(images: torch.Tensor, bands: tuple[str, ...]) -> str | None:
    """Cirrus (B10) is by far the darkest band of clear-sky L1C scenes; check that it is."""
    if "B10" not in bands:
        return None
    medians = images[: min(256, len(images))].transpose(0, 1).flatten(1).median(dim=1).values
    darkest = bands[int(medians.argmin())]
    if darkest != "B10":
        return (f"band-order check failed: the darkest band is {darkest}, not B10 (cirrus); the "
                f"band labels may be wrong (per-band medians {medians.tolist()})")
    return None


def load_geobench(name: str, split: str, root: str | os.PathLike | None = None, *,
                  partition: str = "default", limit: int | None = None,
                  limit_per_class: int | None = None, seed: int = 0, download: bool = False,
                  fix_band_order: bool = True, band_names: tuple[str, ...] | None = None,
                  registry_classes: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
                  max_gib: float | None = 32.0, settings: Settings | None = None
                  ) -> ImageDataset:
    """Load one split of a GEO-Bench classification task into memory.

    Args:
        name: task folder name, e.g. ``"m-eurosat"``.
        split: ``"train"``, ``"valid"`` or ``"test"`` of ``partition``.
        root: GEO-Bench folder (holding ``classification_v1.0/``); default ``$GEO_BENCH_DIR``,
            then ``$SLIMLIB_DATA/geobench``, then the slimlib cache.
        partition: partition file prefix (``"default"``, ``"0.10x_train"``, …).
        limit: keep at most this many samples, evenly spaced (any task).
        limit_per_class: stratified deterministic subset (single-label tasks only).
        download: fetch the task from Hugging Face when it is missing.
        fix_band_order: relabel m-eurosat's bands to the EuroSAT file order (see docs).
        band_names: override the channel names read from the files.
        max_gib: refuse to allocate more float32 image memory than this.
        settings: where ``root=None`` looks (:class:`slimlib.settings.Settings`; ``None``:
            :func:`slimlib.settings.current`).
    """
    limit_per_class = check_limit(limit_per_class)
    if root is None:
        settings = or_current(settings)
    task_dir = find_task_dir(name, root, settings)
    if task_dir is None:
        if not download:
            raise _missing_error(name, root, settings)
        task_dir = download_task(name, root, settings=settings)
    sample_names = partition_samples(task_dir, name, partition, split)
    specs = read_task_specs(task_dir)

    log = SkipLog(name)

    def read(sample: str) -> tuple[np.ndarray, list[str], bool, Any] | str:
        try:
            bands, label = read_sample(task_dir / f"{sample}.hdf5")
            return (*_stack_bands(bands), label)
        except FileNotFoundError:
            return "file is missing"
        except Exception as err:  # noqa: BLE001
            return f"unreadable ({type(err).__name__}: {err})"

    if limit_per_class is not None:
        # labels are needed first: read all labels (cheap relative to the pixels kept later)
        labels_only = [read_label(task_dir / f"{s}.hdf5") for s in sample_names]
        if any(isinstance(lab, np.ndarray) and lab.ndim == 1 and lab.size > 1
               for lab in labels_only if lab is not None):
            raise ValueError(f"{name} is multi-label: use limit= instead of limit_per_class=")
        valid = [i for i, lab in enumerate(labels_only) if lab is not None]
        keep = stratified_subset([int(labels_only[i]) for i in valid], limit_per_class, seed)
        # unreadable samples stay in the list so that reading them reports them (no silent drop)
        chosen = {valid[i] for i in keep} | {i for i, lab in enumerate(labels_only) if lab is None}
        sample_names = [sample_names[i] for i in sorted(chosen)]
    keep = even_subset(len(sample_names), limit)
    sample_names = [sample_names[i] for i in keep]
    if not sample_names:
        raise ValueError(f"{name}/{split}: the partition lists no samples")

    results: list = []
    first = None
    for sample in sample_names:            # the first readable sample fixes bands and shape
        results.append(read(sample))
        if not isinstance(results[-1], str):
            first = results[-1]
            break
    if first is None:
        raise FileNotFoundError(f"{name}/{split}: none of the {len(sample_names)} samples in "
                                f"{task_dir} could be read (first error: {results[0]})")
    ref_names, ref_shape = first[1], first[0].shape
    check_memory(len(sample_names), ref_shape, max_gib, f"{name}/{split}",
                 "pass limit=/limit_per_class= or a larger max_gib=")
    # pixels go straight into one preallocated array (no second copy of the dataset)
    buffer = np.empty((len(sample_names), *ref_shape), np.float32)
    buffer[len(results) - 1] = first[0]
    results[-1] = first[1:]

    def read_into(i: int) -> tuple[list[str], bool, Any] | str:
        res = read(sample_names[i])
        if isinstance(res, str):
            return res
        if res[1] != ref_names or res[0].shape != ref_shape:
            return f"bands {res[1]} / shape {res[0].shape} differ from {ref_names} / {ref_shape}"
        buffer[i] = res[0]
        return res[1:]

    results += parallel_map(read_into, list(range(len(results), len(sample_names))),
                            desc=f"read {name}/{split}", threads=2)
    ok: list[int] = []
    for i, (sample, res) in enumerate(zip(sample_names, results, strict=True)):
        if isinstance(res, str):
            log.skip(f"{sample}.hdf5", res)
        else:
            ok.append(i)
    notes = log.finish(len(sample_names))
    images = torch.from_numpy(buffer if len(ok) == len(buffer) else buffer[ok])
    raw_labels = [results[i][2] for i in ok]
    multilabel = isinstance(raw_labels[0], np.ndarray) and raw_labels[0].ndim == 1 \
        and raw_labels[0].size > 1
    if multilabel:
        labels = torch.from_numpy(np.stack([np.asarray(lab, np.float32) for lab in raw_labels]))
    else:
        labels = torch.tensor([int(np.asarray(lab).reshape(())) for lab in raw_labels],
                              dtype=torch.int64)

    names = list(ref_names)
    if any(results[i][1] for i in ok):
        notes.append("some bands had a coarser grid and were resampled bilinearly to the largest")
    divisor = _check_s2_scale(images, names)
    s2_idx = [i for i, n in enumerate(names) if is_s2(n)]
    if divisor != 1.0:
        images[:, s2_idx] /= divisor
        notes.append("Sentinel-2 channels stored as DN; divided by 10000 (units reflectance).")
    elif s2_idx:
        notes.append("Sentinel-2 channels already stored as reflectance (median < 20); not rescaled.")
    units = "reflectance" if s2_idx else ("rgb01" if all(is_rgb(n) for n in names) else "reflectance")
    if units == "rgb01":
        images /= 255.0
    if any(n.startswith("S1 ") for n in names):
        notes.append("Sentinel-1 channels (S1 …) are kept as stored (So2Sat LCZ42 values); "
                     "'units' refers to the Sentinel-2 channels only.")

    bands = tuple(names)
    if band_names is not None:
        if len(band_names) != len(bands):
            raise ValueError(f"band_names has {len(band_names)} names; {name} has {len(bands)} "
                             f"channels {bands}")
        bands = tuple(band_names)
        notes.append(f"band names overridden by the caller: {bands}")
    elif name == "m-eurosat" and fix_band_order and bands == S2_BANDS:
        bands = EUROSAT_MS_BANDS
        notes.append("m-eurosat band labels corrected: GEO-Bench labelled the EuroSAT file order "
                     "(B01..B12,B8A) as B01..B08,B8A,B09..B12 (ServiceNow/geo-bench#28); channels "
                     "are now named in file order. Pass fix_band_order=False to keep the labels.")
    if name == "m-brick-kiln" and band_names is None:
        notes.append("m-brick-kiln band labels are GEO-Bench's; ServiceNow/geo-bench#29 reports the "
                     "source exported B1,B2,B3,B4,B5,B7,B8A,B8,B11,B12,TCI_R,TCI_G,TCI_B instead "
                     "(unverified here; override with band_names=).")
    check = _band_order_check(images, bands)
    if check:
        warnings.warn(f"{name}: {check}", UserWarning, stacklevel=2)
        notes.append(check)

    classes = specs.get("classes") or tuple(
        registry_classes() if callable(registry_classes) else registry_classes)
    n_classes = labels.shape[1] if multilabel else (int(labels.max()) + 1 if len(labels) else 0)
    if not classes or len(classes) < n_classes:
        classes = tuple(f"class-{i}" for i in range(max(n_classes, specs.get("n_classes") or 0)))
        notes.append("class names not found in task_specs.pkl; generic names used")
    if limit is not None or limit_per_class is not None:
        notes.append(f"subset: limit={limit}, limit_per_class={limit_per_class}, seed={seed}")
    return ImageDataset(
        name=name, split=split, images=images, labels=labels, classes=tuple(classes),
        bands=bands, units=units, synthetic=False,
        paths=tuple(f"{sample_names[i]}.hdf5" for i in ok), notes=notes,
    )


def read_label(path: Path) -> Any:
    """Only the label of one sample (``None`` when unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as fp:
            return _pickle_attr(fp.attrs["pickle"]).get("label")
    except Exception:  # noqa: BLE001 - reported when the pixels are read
        return None
