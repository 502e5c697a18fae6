"""Embedded tiny foundation models that slimlib pretrains itself, on demand, on a CPU.

Six tiny ViTs share one architecture and one recipe per method (the CV runs train longer,
see ``_DOMAIN_RECIPES`` in :mod:`slimlib.train.embedded_recipes`), so remote-sensing (RS)
and computer-vision (CV) pretraining can be compared in miniature:

================================  ==========  =====================================
name                              method      pretraining data (embedded train split)
================================  ==========  =====================================
``rs-moco-tiny``                  MoCo v3     EuroSAT RGB (``eurosat-rgb``, 6,400)
``rs-moco-tiny-slimmable``        MoCo v3 +   EuroSAT RGB
                                  slimmable
``rs-mae-tiny``                   MAE         EuroSAT RGB
``rs-mae-tiny-slimmable``         MAE +       EuroSAT RGB
                                  slimmable
``cv-moco-tiny``                  MoCo v3     CIFAR-10 (``cifar10``, 3,000)
``cv-mae-tiny``                   MAE         CIFAR-10
================================  ==========  =====================================

Contract used by :mod:`slimlib.models`:

* :data:`EMBEDDED_SPECS` ``{name: ModelSpec}``;
* :func:`build_encoder` ``(name) -> TinyViTEncoder`` with random weights (``.spec`` set);
* :func:`pretrained_encoder` ``(name, train_if_missing=True, progress=True) -> TinyViTEncoder``.

Checkpoints live in ``<Settings.cache>/checkpoints/<name>-<hash>.pt`` with the
loss curve in ``<name>-<hash>.csv``; ``<hash>`` covers the full training config and a
fingerprint of the training data (the dataset's ``manifest.csv`` bytes, or the image
tensor for synthetic data). A missing checkpoint is trained (deterministically: fixed
seed, one thread, deterministic algorithms) and written atomically; a lock file keeps
concurrent processes from training the same model twice.

Without a data root (``$SLIMLIB_DATA``) the models are trained on ``synthetic-rgb``
instead, and their spec says so in ``notes`` and ``source``.

The recipes, configs and specs are defined in :mod:`slimlib.train.embedded_recipes` and
re-exported here; this module owns the checkpoints, the training data and the training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from slimlib import _io
from slimlib._paths import data_root
from slimlib.settings import Settings, or_current
from slimlib.train.embedded_recipes import (
    _NAMES,
    EMBEDDED_CONFIGS,
    EMBEDDED_DATA,
    EMBEDDED_SPECS,
    SNAPSHOT_FRACTIONS,
    SYNTHETIC_DATASET,
    TINY_MODEL,  # noqa: F401 - re-exported
    _check_name,
    estimated_cost,
    snapshot_steps,
)
from slimlib.train.encoder import TinyViTEncoder, build_vit

__all__ = [
    "EMBEDDED_SPECS", "EMBEDDED_CONFIGS", "EMBEDDED_DATA", "RECIPE_VERSION", "build_encoder",
    "pretrained_encoder", "checkpoint_path", "training_data", "pretrain_missing", "estimated_cost",
    "SNAPSHOT_FRACTIONS", "snapshot_steps", "snapshot_dir", "snapshot_paths",
]

#: Bumped whenever the training code changes results, so old checkpoints are not reused.
RECIPE_VERSION = "1"


def snapshot_dir(name: str, *, root: str | os.PathLike | None = None,
                 settings: Settings | None = None) -> Path:
    """Folder of the snapshots kept beside the checkpoint of ``name``."""
    return checkpoint_path(name, root=root, settings=settings).with_suffix(".snapshots")


def snapshot_paths(name: str, *, root: str | os.PathLike | None = None,
                   settings: Settings | None = None) -> dict[int, Path]:
    """``{step: encoder snapshot file}`` of ``name`` that exist (empty when the checkpoint
    was trained before snapshots were kept; chapter 10 then retrains them)."""
    folder = snapshot_dir(name, root=root, settings=settings)
    found = {s: folder / f"encoder-step{s:06d}.pt" for s in snapshot_steps(name)}
    return {s: p for s, p in found.items() if p.is_file()}


def build_encoder(name: str, *, seed: int | None = None) -> TinyViTEncoder:
    """The embedded model ``name`` with random weights (seeded), in eval mode.

    ``seed`` draws the initial weights (default: the recipe's own seed, the init that
    pretraining starts from); random-init controls pass other seeds.

    Returns:
        :class:`TinyViTEncoder`: ``(B, 3, H, W)`` normalised images -> ``(B, 128)``; ``.spec`` set.
    """
    _check_name(name)
    config = EMBEDDED_CONFIGS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed if seed is None else int(seed))
        encoder = TinyViTEncoder(build_vit(config.model, 3), feature=config.feature)
    encoder.spec = EMBEDDED_SPECS[name]
    return encoder.eval()


# ---------------------------------------------------------------------------- data & cache
def _has_real_data(domain: str, root: str | os.PathLike | None = None) -> Path | None:
    """The train manifest of ``domain``'s real data, ``None`` without a data root.

    The one default-data rule (:func:`slimlib.data.datasets_for_root`): a data root that is
    given must hold the dataset (``FileNotFoundError`` naming the folder otherwise); only
    without a root does pretraining use the labelled synthetic data.
    """
    from slimlib.data import datasets_for_root

    dataset = EMBEDDED_DATA[domain]["dataset"]
    if datasets_for_root(root, (dataset,), SYNTHETIC_DATASET) == (SYNTHETIC_DATASET,):
        return None
    return data_root(root, required=True) / EMBEDDED_DATA[domain]["folder"] / "manifest.csv"


def training_data(name: str, *, root: str | os.PathLike | None = None,
                  settings: Settings | None = None):
    """The :class:`~slimlib.specs.ImageDataset` model ``name`` is pretrained on.

    The embedded train split when the data root (``root``, default ``settings.data``, i.e.
    ``$SLIMLIB_DATA``) holds it, else ``synthetic-rgb`` when no root is given.
    """
    from slimlib import data as sdata

    _check_name(name)
    if root is None:
        root = or_current(settings).data
    domain = _NAMES[name][0]
    if _has_real_data(domain, root) is not None:
        return sdata.load(EMBEDDED_DATA[domain]["dataset"], "train", root=root)
    return sdata.load(SYNTHETIC_DATASET, "train")


def _fingerprint(name: str, root: str | os.PathLike | None) -> tuple[str, bool]:
    """(fingerprint of the training data, synthetic?) without decoding real images; ``root``
    is the effective data root (``None``: none)."""
    manifest = _has_real_data(_NAMES[name][0], root)
    if manifest is not None:
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
        return f"{EMBEDDED_DATA[_NAMES[name][0]]['dataset']}:train:{digest}", False
    from slimlib import data as sdata
    from slimlib.train.loop import data_fingerprint

    synthetic = sdata.load(SYNTHETIC_DATASET, "train")
    return f"{SYNTHETIC_DATASET}:train:{data_fingerprint(synthetic)}", True


def checkpoint_path(name: str, *, root: str | os.PathLike | None = None,
                    settings: Settings | None = None) -> Path:
    """Where the pretrained checkpoint of ``name`` is (or will be) cached, under
    ``<settings.cache>/checkpoints/``; ``root`` is the data root it is trained from (default
    ``settings.data``). ``settings=None``: :func:`slimlib.settings.current`."""
    _check_name(name)
    settings = or_current(settings)
    fingerprint, _ = _fingerprint(name, settings.data_root(root))
    key = EMBEDDED_CONFIGS[name].hash(fingerprint, f"recipe={RECIPE_VERSION}",
                                      f"torch={torch.__version__.split('+')[0]}")
    return settings.cache_dir("checkpoints") / f"{name}-{key}.pt"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (POSIX); a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(name: str, path: Path) -> TinyViTEncoder:
    state = torch.load(path, map_location="cpu", weights_only=False)
    encoder = build_encoder(name)
    encoder.load_state_dict(state["state_dict"])
    spec = EMBEDDED_SPECS[name]
    notes = spec.notes + f" Trained for {state['step']} steps ({state['elapsed_s']:.0f} s)."
    if state.get("synthetic"):
        notes += (" TRAINED ON SYNTHETIC DATA (synthetic-rgb): no data root was set; "
                  "do not report its results as real-data results.")
    encoder.spec = dataclasses.replace(
        spec, source=f"{spec.source}; checkpoint {path}", notes=notes,
        pretraining=spec.pretraining + (" [synthetic data]" if state.get("synthetic") else ""),
    )
    return encoder.eval()


def pretrained_encoder(name: str, *, train_if_missing: bool = True, progress: bool = True,
                       root: str | os.PathLike | None = None,
                       settings: Settings | None = None) -> TinyViTEncoder:
    """The pretrained embedded model ``name``: from the cache, or trained now.

    Args:
        name: one of :data:`EMBEDDED_SPECS`.
        train_if_missing: train (45-240 s on one CPU core) when no checkpoint is cached;
            with ``False`` a missing checkpoint raises ``FileNotFoundError``.
        progress: show a tqdm bar while training.
        root: the data root to pretrain from (default ``settings.data``; none: synthetic).
        settings: data root and cache (``None``: :func:`slimlib.settings.current`).

    Returns:
        :class:`TinyViTEncoder` in eval mode; ``.spec.source`` names the checkpoint file.
    """
    from slimlib.train.loop import pretrain, save_atomic

    settings = or_current(settings)
    root = settings.data_root(root)
    path = checkpoint_path(name, root=root, settings=settings)
    if path.exists():
        return _load(name, path)
    if not train_if_missing:
        raise FileNotFoundError(f"no cached checkpoint for {name!r} at {path}; call "
                                "pretrained_encoder(name, train_if_missing=True) to train it")
    with _lock(path.with_suffix(".lock")):
        if path.exists():  # another process finished it while we waited
            return _load(name, path)
        data = training_data(name, root=root, settings=settings)
        fingerprint, synthetic = _fingerprint(name, root)
        run_dir = path.with_suffix(".run")
        start = time.perf_counter()
        result = pretrain(EMBEDDED_CONFIGS[name], data, run_dir, resume=True, progress=progress,
                          fingerprint=fingerprint, snapshot_steps=snapshot_steps(name))
        with _io.atomic_path(path.with_suffix(".csv"), fsync=False) as csv_tmp:
            result.losses.to_csv(csv_tmp, index=False)
        save_atomic({"format": 1, "name": name, "state_dict": result.encoder.state_dict(),
                     "config": result.config.to_dict(), "fingerprint": fingerprint,
                     "synthetic": synthetic or bool(getattr(data, "synthetic", False)),
                     "step": result.step, "elapsed_s": result.elapsed_s,
                     "wall_s": time.perf_counter() - start,
                     "final_loss": float(result.losses["loss_full"].iloc[-1])}, path)
        _keep_snapshots(run_dir, path.with_suffix(".snapshots"))
        shutil.rmtree(run_dir, ignore_errors=True)
    return _load(name, path)


def _keep_snapshots(run_dir: Path, target: Path) -> None:
    """Move the run's snapshot folder beside the checkpoint (replacing an older one)."""
    from slimlib.train.loop import SNAPSHOTS

    source = run_dir / SNAPSHOTS
    if not source.is_dir():
        return
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.replace(source, target)


def _train_one(name: str, root: str | None, settings: Settings) -> str:
    pretrained_encoder(name, train_if_missing=True, progress=False, root=root, settings=settings)
    return str(checkpoint_path(name, root=root, settings=settings))


def pretrain_missing(names: list[str] | tuple[str, ...] | None = None, *,
                     processes: int = 2, root: str | os.PathLike | None = None,
                     settings: Settings | None = None) -> dict[str, Path]:
    """Train every embedded model whose checkpoint is missing, ``processes`` at a time.

    Each model trains single-threaded (its recipe), so two processes use both cores of a
    2-core machine and halve the wall time of a cold cache; results are identical to
    training them one by one. ``root`` is the data root to pretrain from (default
    ``settings.data``; a relative path is taken against the current folder here, before the
    worker processes start, which receive ``settings`` explicitly). Returns
    ``{name: checkpoint path}``.
    """
    names = list(EMBEDDED_SPECS) if names is None else list(names)
    for name in names:
        _check_name(name)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive int; got {processes!r}")
    settings = or_current(settings)
    if root is not None:
        root = str(data_root(root, required=True).resolve())
    elif settings.data is not None:
        root = str(settings.data)
    missing = [n for n in names if not checkpoint_path(n, root=root, settings=settings).exists()]
    # longest first, so the pool finishes together (greedy longest-processing-time order)
    missing.sort(key=estimated_cost, reverse=True)
    if processes == 1 or len(missing) <= 1:
        for name in missing:
            _train_one(name, root, settings)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(processes, len(missing)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_train_one, missing, [root] * len(missing),
                          [settings] * len(missing)))
    return {name: checkpoint_path(name, root=root, settings=settings) for name in names}
