"""Frozen-feature extraction with an atomic on-disk cache.

:func:`extract` runs an encoder ``forward(x (B, C, S, S)) -> (B, D)`` over a dataset in
batches and returns float32 features ``(N, D)`` with the labels. Results are cached under
``<cache>/features/<key>.npz`` (``Settings.cache``); the key is a hash of everything
that changes the features (see :func:`feature_key`). Entries are written to a temporary file
and ``os.replace``\\ d into place, so an interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimlib import __version__, _io
from slimlib._validation import check_same_length
from slimlib.settings import Settings
from slimlib.specs import ImageDataset, ModelSpec

#: What users call. The cache plumbing (``prepare_dataset``, ``prepared_batches``,
#: ``cache_path``, ``load_cached``, ``save_cached``, ...) stays importable for slimlib's own
#: modules but is not part of the public surface.
__all__ = [
    "extract",
    "data_fingerprint",
    "module_fingerprint",
    "feature_key",
    "preprocessing_id",
    "precision",
    "resolve_device",
]

#: Bumped whenever the cached file layout or the extraction semantics change.
CACHE_FORMAT = 1
#: Datasets whose prepared float32 tensor would exceed this many GiB are prepared batch by
#: batch while extracting instead of once in memory (the sweep then re-prepares per width).
MAX_PREPARED_GIB = 2.0

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


# ----------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` picks CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; "
                         "use device='cpu' or device=None")
    return dev


def precision(device: torch.device) -> str:
    """Compute precision used on ``device``: ``"bf16"``/``"fp16"`` autocast on CUDA, else ``"fp32"``."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    mode = precision(device)
    if mode == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


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


def prepare_dataset(dataset: ImageDataset, spec: ModelSpec) -> torch.Tensor:
    """Prepare an :class:`ImageDataset` for a model: ``(N, C', S, S)`` float32 (via slimlib.data)."""
    from slimlib import data as _data

    x = torch.as_tensor(_data.prepare(dataset, spec))
    if x.ndim != 4 or x.shape[0] != len(dataset):
        raise ValueError(f"slimlib.data.prepare returned shape {tuple(x.shape)}; expected "
                         f"({len(dataset)}, C, S, S)")
    return x.float()


def prepared_gib(dataset: ImageDataset, spec: ModelSpec) -> float:
    """Size in GiB of ``dataset`` prepared for ``spec`` as float32."""
    return len(dataset) * spec.in_chans * spec.input_size ** 2 * 4 / 2**30


def prepared_batches(dataset: ImageDataset, spec: ModelSpec,
                     batch_size: int) -> Iterator[torch.Tensor]:
    """Prepared inputs ``(B, C', S, S)`` batch by batch (via slimlib.data.iter_prepared)."""
    from slimlib import data as _data

    for xb, _ in _data.iter_prepared(dataset, spec, batch_size):
        yield torch.as_tensor(xb).float()


def preparation_notes(dataset: ImageDataset, spec: ModelSpec) -> list[str]:
    """Notes that preparing ``dataset`` for ``spec`` records (band fills, RGB renderings).

    Computed from :func:`slimlib.data.band_plan` without touching the images, so rows whose
    features come from the cache carry the same notes. Raises what ``band_plan`` raises
    (e.g. RGB data refused by a multispectral model).
    """
    from slimlib.data import band_plan

    return list(band_plan(dataset.bands, dataset.units, spec).notes)


def _spec_of(encoder: nn.Module) -> ModelSpec | None:
    spec = getattr(encoder, "spec", None)
    return spec if isinstance(spec, ModelSpec) else None


def _model_name(encoder: nn.Module, name: str | None) -> str:
    if name:
        return name
    spec = _spec_of(encoder)
    return spec.name if spec is not None else type(encoder).__name__


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


# ----------------------------------------------------------------------------- extraction


def _batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]


def input_dtype(encoder: nn.Module) -> torch.dtype:
    """The dtype inputs are cast to: that of the encoder's first floating-point parameter (or
    buffer), so bf16/fp16 models (e.g. ``slim(model).to(torch.bfloat16)``) get matching
    inputs; float32 for a module without floating-point tensors."""
    for tensor in (*encoder.parameters(), *encoder.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _encode(encoder: nn.Module, x: torch.Tensor | Iterable[torch.Tensor], *, batch_size: int,
            device: torch.device, progress: bool, desc: str, n: int | None = None) -> np.ndarray:
    """Run ``encoder`` over ``x`` (N, C, S, S), or over an iterable of prepared batches
    holding ``n`` images in all; returns float32 (N, D)."""
    from tqdm.auto import tqdm

    if isinstance(x, torch.Tensor):
        n, batches = int(x.shape[0]), _batches(x, batch_size)
    else:
        batches = iter(x)
    assert n is not None
    out: np.ndarray | None = None
    dtype = input_dtype(encoder)
    was_training = encoder.training
    encoder.eval()
    encoder.to(device)
    try:
        with torch.inference_mode(), _autocast(device), tqdm(
            total=n, desc=desc, unit="img", disable=not progress, leave=False
        ) as bar:
            start = 0
            for xb in batches:
                xb = xb.to(device, dtype=dtype, non_blocking=True)
                f = encoder(xb)
                if not isinstance(f, torch.Tensor) or f.ndim != 2 or f.shape[0] != xb.shape[0]:
                    shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                    raise ValueError(f"encoder must return features (B, D) for a batch of "
                                     f"{xb.shape[0]}; got {shape}")
                if out is None:
                    out = np.empty((n, f.shape[1]), dtype=np.float32)
                out[start:start + f.shape[0]] = f.float().cpu().numpy()
                start += f.shape[0]
                bar.update(f.shape[0])
    finally:
        encoder.train(was_training)
    if out is None or start != n:
        raise ValueError(f"length mismatch: expected {n} inputs, the batches held {start}")
    return out


def extract(
    encoder: nn.Module,
    dataset: ImageDataset | tuple[Any, Any],
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    cache_key: str | None = None,
    cache: bool = True,
    progress: bool = True,
    name: str | None = None,
    width: float | None = None,
    settings: Settings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen features of ``encoder`` on ``dataset``.

    Args:
        encoder: module with ``forward(x (B, C, S, S)) -> (B, D)``; an :class:`ImageDataset`
            needs ``encoder.spec`` (a :class:`ModelSpec`) to be prepared.
        dataset: an :class:`ImageDataset` (prepared with ``encoder.spec``) or an already
            prepared pair ``(x (N, C, S, S) float, y (N,) or (N, K))``.
        batch_size: images per forward pass.
        device: ``"cpu"``, ``"cuda"``… ; ``None`` picks CUDA when available. On CUDA the
            forward runs under bf16 (or fp16) autocast; features are always float32.
        cache_key: cache entry name (build it with :func:`feature_key`). ``None`` derives one
            from :func:`module_fingerprint` of ``encoder``, :func:`data_fingerprint` of the
            data, the preprocessing and the precision (hashing reads every weight and input once).
        cache: read and write the on-disk cache.
        progress: show a tqdm bar.
        name, width: used in error messages (default: ``encoder.spec.name``; ``width`` unknown).
        settings: where the cache is (``settings.cache``; ``None``:
            :func:`slimlib.settings.current`).

    Returns:
        ``(features float32 (N, D), labels (N,) or (N, K))`` as numpy arrays.

    Raises:
        ValueError: non-finite features (names model and width), length mismatch, bad shapes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    dev = resolve_device(device)
    spec = _spec_of(encoder)
    model_name = _model_name(encoder, name)
    if isinstance(dataset, ImageDataset):
        if spec is None:
            raise ValueError(f"{model_name}: an ImageDataset needs encoder.spec (a ModelSpec) to "
                             "be prepared; set .spec or pass a prepared (x, y) pair")
        labels_t = dataset.labels
    else:
        x_pair, labels_t = as_prepared_pair(dataset)
    if len(labels_t) == 0:
        raise ValueError(f"{model_name}: the dataset holds no samples")

    if cache and cache_key is None:
        cache_key = feature_key(
            model=model_name, weights=module_fingerprint(encoder), data=data_fingerprint(dataset),
            preprocessing=preprocessing_id(spec if isinstance(dataset, ImageDataset) else None),
            precision=precision(dev))
    cache_root = None
    if cache:
        from slimlib.settings import or_current

        cache_root = or_current(settings).cache
    if cache and cache_key is not None:
        hit = load_cached(cache_key, labels=labels_t, cache_root=cache_root)
        if hit is not None:
            return hit

    labels = labels_t.detach().cpu().numpy() if isinstance(labels_t, torch.Tensor) \
        else np.asarray(labels_t)
    n = int(labels.shape[0])
    if not isinstance(dataset, ImageDataset):
        x: torch.Tensor | Iterable[torch.Tensor] = x_pair
    elif prepared_gib(dataset, spec) <= MAX_PREPARED_GIB:
        x = prepare_dataset(dataset, spec)
    else:  # too large to hold prepared: prepare batch by batch
        x = prepared_batches(dataset, spec, batch_size)
    if isinstance(x, torch.Tensor) and x.shape[0] != n:
        raise ValueError(f"{model_name}: length mismatch, {x.shape[0]} inputs but {n} labels")
    where = f"width {width:g}" if width is not None else "width unknown"
    feats = _encode(encoder, x, batch_size=batch_size, device=dev, progress=progress,
                    desc=f"{model_name} @ {where}", n=n)
    finite = np.isfinite(feats)
    if not finite.all():
        n_nan = int(np.isnan(feats).sum())
        n_inf = int(np.isinf(feats).sum())
        raise ValueError(
            f"model {model_name!r} at {where}: features contain {n_nan} NaN and {n_inf} Inf "
            f"values (of {feats.size}); the slimmed encoder is numerically unstable at this width "
            "(try device='cpu' / float32, or drop the width)")
    if cache and cache_key is not None:
        save_cached(cache_key, feats, labels, model=model_name, width=width,
                    cache_root=cache_root)
    return feats, labels

