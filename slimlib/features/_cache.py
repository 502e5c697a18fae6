"""Fingerprints, cache keys and the atomic on-disk feature cache.

Owns what identifies a feature matrix (:func:`module_fingerprint`, :func:`data_fingerprint`,
:func:`preprocessing_id`, :func:`feature_key`) and the cache entries under
``<cache>/features/<key>.npz`` (:func:`cache_path`, :func:`load_cached`, :func:`save_cached`,
the entry checks). Entries are written to a temporary file and ``os.replace``\\ d into place,
so an interrupted run never leaves a half-written entry. :func:`as_prepared_pair`, the check
of a prepared ``(x, y)`` pair, lives here because :func:`data_fingerprint` accepts one.
:mod:`slimlib.features` (the extraction) re-exports every public name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimlib import __version__, _io
from slimlib._validation import check_same_length
from slimlib.specs import ImageDataset, ModelSpec

#: Bumped whenever the cached file layout or the extraction semantics change.
CACHE_FORMAT = 1

_SIMPLE = (bool, int, float, str, type(None))


# ----------------------------------------------------------------------------- fingerprints


def _update_tensor(h: Any, t: torch.Tensor | np.ndarray) -> None:
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    a = t.detach().to("cpu").contiguous()
    h.update(f"{a.dtype}{tuple(a.shape)}".encode())
    if a.dtype in (torch.bfloat16, torch.float16):
        a = a.view(torch.int16)
    if a.numel():
        h.update(a.numpy().reshape(-1).view(np.uint8))


def module_fingerprint(module: nn.Module, *, structure: bool = True) -> str:
    """Hex digest of a module's weights (parameters and buffers, by name).

    With ``structure=True`` the class of every submodule and its plain attributes
    (ints, floats, strings, e.g. ``num_heads``, ``head_dim`` or the attention ``scale``) are
    hashed too, so two modules that compute differently with equal weights differ.
    """
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        _update_tensor(h, tensor)
    if structure:
        for name, sub in module.named_modules():
            attrs = {
                k: v for k, v in sorted(vars(sub).items())
                if not k.startswith("_") and k != "training"
                and (isinstance(v, _SIMPLE) or (isinstance(v, tuple)
                                                and all(isinstance(i, _SIMPLE) for i in v)))
            }
            h.update(f"{name}:{type(sub).__qualname__}:{attrs!r}".encode())
    return h.hexdigest()


def data_fingerprint(data: Any, *, digits: int = 32) -> str:
    """Hex digest of a dataset's content, the one fingerprint slimlib keys caches with.

    Accepts an :class:`ImageDataset` (images, labels and metadata), an ``(x, y)`` pair of
    prepared inputs (``x`` float ``(N, C, S, S)``), a bare image tensor ``(N, C, H, W)``
    (pretraining data), or a folder dataset with ``.samples``/``.paths`` (the sorted file
    paths and sizes). ``digits`` (2..32, even) truncates the hex digest; the feature cache uses
    all 32, :func:`slimlib.train.loop.data_fingerprint` 16.

    Raises:
        TypeError / ValueError: anything else (the message says what is accepted).
    """
    if not (isinstance(digits, int) and 2 <= digits <= 32 and digits % 2 == 0):
        raise ValueError(f"digits must be an even integer in [2, 32]; got {digits!r}")
    h = hashlib.blake2b(digest_size=16)
    if isinstance(data, ImageDataset):
        meta = [data.name, data.split, data.units, list(data.bands), list(data.classes),
                bool(data.synthetic)]
        h.update(json.dumps(meta).encode())
        _update_tensor(h, data.images)
        _update_tensor(h, data.labels)
    elif isinstance(data, torch.Tensor):
        h.update(b"images")
        _update_tensor(h, data)
    elif isinstance(data, tuple | list) or not (getattr(data, "samples", None)
                                                or getattr(data, "paths", None)):
        x, y = as_prepared_pair(data)
        h.update(b"prepared")
        _update_tensor(h, x)
        _update_tensor(h, y)
    else:
        files = getattr(data, "samples", None) or getattr(data, "paths", None)
        h.update(b"files")
        for item in sorted(str(f[0] if isinstance(f, tuple | list) else f) for f in files):
            h.update(item.encode())
            with contextlib.suppress(OSError):
                h.update(str(os.path.getsize(item)).encode())
    return h.hexdigest()[:digits]


def preprocessing_id(spec: ModelSpec | None) -> dict[str, Any]:
    """The parts of a :class:`ModelSpec` that change the prepared input tensor."""
    if spec is None:
        return {"prepared": True}
    return {"bands": list(spec.bands), "input_size": int(spec.input_size),
            "mean": [float(v) for v in spec.mean], "std": [float(v) for v in spec.std],
            "units": spec.units}


def feature_key(**components: Any) -> str:
    """Cache key: a hash of everything that changes the features.

    Pass the model name, a weights identity (:func:`module_fingerprint` of the *full* model
    or a checkpoint hash), width, parts, order, slimming seed, scale, dataset name, split,
    :func:`data_fingerprint`, :func:`preprocessing_id` and the :func:`precision`. Any JSON-able
    values work; the key also covers :data:`CACHE_FORMAT` and the slimlib version.

    Example::

        feature_key(model="vit-s", weights=fp, width=0.5, parts=("attn", "ffn"),
                    order="first", seed=None, scale="slimmed", dataset="eurosat_rgb",
                    split="test", data=data_fp, preprocessing=preprocessing_id(spec),
                    precision="fp32")
    """
    if not components:
        raise ValueError("feature_key needs at least one component (model, width, dataset, ...)")
    payload = {"_format": CACHE_FORMAT, "_slimlib": __version__, **components}
    text = json.dumps(payload, sort_keys=True, default=_json_default)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path | torch.device | torch.dtype):
        return str(obj)
    raise TypeError(f"feature_key component of type {type(obj).__name__} is not JSON-able; "
                    "pass a string, number, tuple or a fingerprint instead")


# ----------------------------------------------------------------------------- inputs


def as_prepared_pair(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of prepared inputs as tensors (``x`` float ``(N, C, S, S)``, ``y`` ``(N,)`` or
    ``(N, K)``), or ``TypeError`` / ``ValueError`` saying what is wrong."""
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise TypeError("dataset must be an ImageDataset or an (x, y) pair of prepared inputs "
                        f"(x: float (N, C, S, S), y: labels (N,) or (N, K)); got {type(data).__name__}")
    x, y = (torch.as_tensor(v) if isinstance(v, np.ndarray) else v for v in data)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors or numpy arrays")
    if x.ndim != 4:
        raise ValueError(f"prepared x must be (N, C, S, S); got shape {tuple(x.shape)}")
    check_same_length(x.shape[0], y.shape[0], "x", "y (labels)")
    if not torch.is_floating_point(x):
        raise ValueError(f"prepared x must be floating point; got {x.dtype}. Prepare images with "
                         "slimlib.data.prepare(dataset, spec) first")
    return x, y


# ----------------------------------------------------------------------------- cache


def _cache_root(cache_root: str | os.PathLike | None) -> Path:
    """The cache root given, else that of :func:`slimlib.settings.current` (the public cache
    functions below are entry points when user code calls them without one)."""
    if cache_root is not None:
        return Path(cache_root)
    from slimlib.settings import current

    return current().cache


def cache_path(key: str, *, cache_root: str | os.PathLike | None = None) -> Path:
    """Where the cache entry for ``key`` lives (under ``<cache_root>/features/``; default
    ``Settings.cache``); the folder is created on demand."""
    if not key or any(c in key for c in "/\\") or key.startswith("."):
        raise ValueError(f"cache_key must be a plain file name (e.g. from feature_key); got {key!r}")
    folder = _cache_root(cache_root) / "features"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.npz"


#: Cache folders already reported as unusable in this process (one warning each).
_UNUSABLE_CACHE: set[str] = set()


def _cache_unusable(where: str, err: OSError) -> None:
    """Warn once per folder that the feature cache cannot be used; extraction goes on."""
    if where not in _UNUSABLE_CACHE:
        _UNUSABLE_CACHE.add(where)
        warnings.warn(f"feature cache {where} is not usable ({type(err).__name__}: {err}); "
                      "continuing WITHOUT caching features (results are unaffected, reruns "
                      "recompute them). Point $SLIMLIB_CACHE at a writable folder with free space "
                      "to cache again.", RuntimeWarning, stacklevel=3)


def labels_digest(labels: Any) -> str:
    """Hex digest of a label array (dtype, shape and values): the check a cache entry carries."""
    h = hashlib.blake2b(digest_size=16)
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    _update_tensor(h, np.ascontiguousarray(arr))
    return h.hexdigest()


def _entry_problem(key: str, feats: np.ndarray, labels: np.ndarray, meta: dict[str, Any],
                   expected_labels: Any | None, expected_dim: int | None) -> str | None:
    """Why a cache entry does not match what its key promises, or ``None`` when it does."""
    if meta.get("key", key) != key:
        return f"it was written for key {meta['key']!r}"
    if feats.ndim != 2 or feats.dtype != np.float32:
        return f"features are {feats.dtype} {feats.shape}, not float32 (N, D)"
    if labels.shape[:1] != feats.shape[:1]:
        return f"{feats.shape[0]} feature rows but {labels.shape[0]} labels"
    if "n" in meta and int(meta["n"]) != feats.shape[0]:
        return f"{feats.shape[0]} rows but its metadata says {meta['n']}"
    if "dim" in meta and int(meta["dim"]) != feats.shape[1]:
        return f"dimension {feats.shape[1]} but its metadata says {meta['dim']}"
    if "labels" in meta and meta["labels"] != labels_digest(labels):
        return "its labels do not match their recorded checksum"
    if expected_dim is not None and feats.shape[1] != int(expected_dim):
        return f"dimension {feats.shape[1]}, expected {expected_dim}"
    if expected_labels is not None:
        want = (expected_labels.detach().cpu().numpy() if isinstance(expected_labels, torch.Tensor)
                else np.asarray(expected_labels))
        if want.shape != labels.shape:
            return f"{labels.shape[0]} rows, the dataset has {want.shape[0]} samples"
        if not np.array_equal(want, labels):
            return "its labels differ from the dataset's labels"
    return None


def load_cached(key: str, *, labels: Any | None = None, dim: int | None = None,
                cache_root: str | os.PathLike | None = None,
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached ``(features (N, D) float32, labels)`` for ``key``, or ``None``.

    Every entry is checked before it is trusted: float32 ``(N, D)`` features, one label per
    row, rows/dimension/label checksum as recorded when it was written, the key it was
    written for and, when given, the expected ``labels`` (the dataset's ``(N,)`` or ``(N, K)``
    labels) and feature ``dim``. An entry that fails a check, cannot be read, or a cache
    folder that cannot be read gives ``None`` with a ``RuntimeWarning`` (the caller recomputes
    and overwrites the entry).
    """
    cache_root = _cache_root(cache_root)
    try:
        path = cache_path(key, cache_root=cache_root)
        if not path.is_file():
            return None
    except OSError as err:  # the cache folder cannot be created or read
        _cache_unusable(str(cache_dir_path(cache_root)), err)
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            feats, stored = npz["features"], npz["labels"]
            meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    except Exception as err:  # noqa: BLE001 - a bad entry is recomputed, never trusted
        warnings.warn(f"Ignoring unreadable feature cache entry {path} ({err}); recomputing.",
                      RuntimeWarning, stacklevel=2)
        return None
    problem = _entry_problem(key, feats, stored, meta if isinstance(meta, dict) else {},
                             labels, dim)
    if problem is not None:
        warnings.warn(f"Ignoring feature cache entry {path}: {problem}; recomputing.",
                      RuntimeWarning, stacklevel=2)
        return None
    return feats, stored


def cache_dir_path(cache_root: str | os.PathLike | None = None) -> Path:
    """The feature cache folder, without creating it (for messages)."""
    return _cache_root(cache_root) / "features"


def save_cached(key: str, feats: np.ndarray, labels: np.ndarray, *,
                cache_root: str | os.PathLike | None = None, **meta: Any) -> bool:
    """Write one cache entry atomically (with its key, rows, dimension and label checksum);
    a read-only or full cache folder warns once and returns ``False`` instead of raising."""
    record = {**meta, "key": key, "n": int(feats.shape[0]), "dim": int(feats.shape[1]),
              "dtype": str(feats.dtype), "labels": labels_digest(labels), "format": CACHE_FORMAT}
    cache_root = _cache_root(cache_root)
    try:
        _atomic_save(cache_path(key, cache_root=cache_root), features=feats, labels=labels,
                     meta=np.array(json.dumps(record)))
    except OSError as err:
        _cache_unusable(str(cache_dir_path(cache_root)), err)
        return False
    return True


def _atomic_save(path: Path, **arrays: np.ndarray) -> None:
    with _io.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
