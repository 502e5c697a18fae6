"""Frozen-feature extraction with an atomic on-disk cache.

:func:`extract` runs an encoder ``forward(x (B, C, S, S)) -> (B, D)`` over a dataset in
batches and returns float32 features ``(N, D)`` with the labels. Results are cached under
``<cache>/features/<key>.npz`` (``Settings.cache``); the key is a hash of everything
that changes the features (see :func:`feature_key`). The fingerprints, keys and the atomic
cache entries live in :mod:`slimlib.features._cache` and are re-exported here; this module
owns the devices, the input preparation and the extraction itself.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

# the cache plumbing keeps its old import path (slimlib.features.cache_path, ...)
from slimlib.features._cache import (
    CACHE_FORMAT,  # noqa: F401 - re-exported
    as_prepared_pair,
    cache_dir_path,  # noqa: F401 - re-exported
    cache_path,  # noqa: F401 - re-exported
    data_fingerprint,
    feature_key,
    labels_digest,  # noqa: F401 - re-exported
    load_cached,
    module_fingerprint,
    preprocessing_id,
    save_cached,
)
from slimlib.settings import Settings
from slimlib.specs import ImageDataset, ModelSpec, spec_of

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

#: Datasets whose prepared float32 tensor would exceed this many GiB are prepared batch by
#: batch while extracting instead of once in memory (the sweep then re-prepares per width).
MAX_PREPARED_GIB = 2.0


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


def _model_name(encoder: nn.Module, name: str | None) -> str:
    if name:
        return name
    spec = spec_of(encoder)
    return spec.name if spec is not None else type(encoder).__name__


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


def _on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` itself when all its parameters and buffers are on ``device``, else a copy
    moved there: the caller's module stays on the device(s) it is on."""
    target = torch.empty(0, device=device).device  # "cuda" -> "cuda:<current>"
    if all(t.device == target for t in (*module.parameters(), *module.buffers())):
        return module
    return copy.deepcopy(module).to(target)


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
    try:
        model = _on_device(encoder, device)  # the caller's encoder is not moved
        with torch.inference_mode(), _autocast(device), tqdm(
            total=n, desc=desc, unit="img", disable=not progress, leave=False
        ) as bar:
            start = 0
            for xb in batches:
                xb = xb.to(device, dtype=dtype, non_blocking=True)
                f = model(xb)
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
            ``encoder`` stays where it is: when its weights are on another device, a copy
            moved to ``device`` runs the forward passes.
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
    spec = spec_of(encoder)
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

