"""GEO-Bench's on-disk format: HDF5 samples, pickled attributes, partitions, task specs.

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
so a tampered file cannot run code. The classification loader (:mod:`.geobench`) and the
segmentation loader (:mod:`.geobench_seg`) both read through it.
"""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bands import geobench_band_name

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


def read_label(path: Path) -> Any:
    """Only the label of one sample (``None`` when unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as fp:
            return _pickle_attr(fp.attrs["pickle"]).get("label")
    except Exception:  # noqa: BLE001 - reported when the pixels are read
        return None
