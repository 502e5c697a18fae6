"""The pretraining loop shared by every scale: tiny CPU models and ViT-B/16 on a GPU.

:func:`pretrain` trains MoCo v3 or MAE (optionally slimmable) from a
:class:`~slimlib.train.configs.PretrainConfig` and a dataset, with

* per-step seeding: the batch, the augmentations, the MAE mask and the sandwich widths of
  step ``t`` come from generators seeded with ``(seed, t)``, so a resumed run reproduces
  the uninterrupted one exactly (on CPU, with deterministic algorithms);
* atomic checkpoints ``<out>/last.pt`` every ``checkpoint_every`` steps and at the end,
  resumed automatically;
* a loss table ``<out>/loss.csv`` (one row per logged step) and an encoder-only
  ``<out>/encoder.pt`` at the end;
* a tqdm progress bar.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from slimlib import _io
from slimlib.train.augment import Augment
from slimlib.train.configs import PretrainConfig, load_config
from slimlib.train.encoder import Encoder, build_vit
from slimlib.train.mae import MAE
from slimlib.train.moco import MoCoV3
from slimlib.train.slimmable import sandwich_widths, width

__all__ = [
    "pretrain", "PretrainResult", "build_method", "load_encoder", "save_atomic",
    "data_fingerprint", "total_steps", "lr_at", "frozen_heads", "resolve_device",
]

CHECKPOINT = "last.pt"
ENCODER = "encoder.pt"
LOSSES = "loss.csv"
#: Folder of ``out_dir`` that holds the encoder snapshots (``pretrain(snapshot_steps=...)``).
SNAPSHOTS = "snapshots"
#: Config fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("device", "num_workers", "checkpoint_every", "log_every", "num_threads")


# ---------------------------------------------------------------------------- data sources
class _TensorSource:
    """Batches from an in-memory ``(N, C, H, W)`` tensor, one permutation per epoch."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int) -> None:
        self.images = images
        self.n = int(images.shape[0])
        self.batch_size = min(batch_size, self.n)
        self.seed = seed
        self.steps_per_epoch = max(1, self.n // self.batch_size)

    def indices(self, step: int) -> torch.Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = torch.randperm(self.n,
                              generator=torch.Generator().manual_seed(_mix(self.seed, -1 - epoch)))
        return perm[pos * self.batch_size:(pos + 1) * self.batch_size]

    def batches(self, start: int) -> Iterator[torch.Tensor]:
        step = start
        while True:
            yield self.images[self.indices(step)]
            step += 1


class _LoaderSource(_TensorSource):
    """Batches from a map-style ``Dataset`` through a ``DataLoader`` (workers decode)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, num_workers: int) -> None:
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        self.batch_size = min(batch_size, self.n)
        self.seed = seed
        self.num_workers = num_workers
        self.steps_per_epoch = max(1, self.n // self.batch_size)

    def batches(self, start: int) -> Iterator[torch.Tensor]:
        step = start
        while True:
            epoch, pos = divmod(step, self.steps_per_epoch)
            order = [self.indices(epoch * self.steps_per_epoch + p)
                     for p in range(pos, self.steps_per_epoch)]
            loader = DataLoader(self.dataset, batch_sampler=[o.tolist() for o in order],
                                num_workers=self.num_workers, collate_fn=_collate_images,
                                pin_memory=torch.cuda.is_available(),
                                persistent_workers=False)
            for batch in loader:
                yield batch
                step += 1


def _collate_images(items: list[Any]) -> torch.Tensor:
    images = [item[0] if isinstance(item, tuple | list) else item for item in items]
    return torch.stack([torch.as_tensor(im, dtype=torch.float32) for im in images])


def _images_of(data: Any) -> torch.Tensor | None:
    if isinstance(data, torch.Tensor):
        return data
    images = getattr(data, "images", None)
    return images if isinstance(images, torch.Tensor) else None


def data_fingerprint(data: Any) -> str:
    """16 hex digits of :func:`slimlib.features.data_fingerprint` (the one algorithm) of the
    training data: an ImageDataset, an image tensor or a folder dataset (``.samples``)."""
    from slimlib.features import data_fingerprint as fingerprint
    from slimlib.specs import ImageDataset

    images = _images_of(data)
    if images is None and not (getattr(data, "samples", None) or getattr(data, "paths", None)):
        raise ValueError("cannot fingerprint this dataset: give an ImageDataset, a tensor or "
                         "a dataset with .samples/.paths")
    return fingerprint(data if isinstance(data, ImageDataset) or images is None else images,
                       digits=16)


def _channel_stats(data: Any, source: _TensorSource) -> tuple[list[float], list[float]]:
    images = _images_of(data)
    if images is None:  # sample up to 512 items of a dataset
        idx = torch.linspace(0, source.n - 1, min(512, source.n)).long().tolist()
        images = _collate_images([data[i] for i in idx])
    elif images.shape[0] > 4096:
        images = images[torch.linspace(0, images.shape[0] - 1, 4096).long()]
    x = images.double().transpose(0, 1).reshape(images.shape[1], -1)
    std = x.std(dim=1).clamp_min(1e-6)
    return x.mean(dim=1).tolist(), std.tolist()


def _in_chans(data: Any) -> int:
    images = _images_of(data)
    if images is not None:
        return int(images.shape[1])
    first = data[0]
    first = first[0] if isinstance(first, tuple | list) else first
    return int(torch.as_tensor(first).shape[0])


# ---------------------------------------------------------------------------- pieces
def _mix(seed: int, step: int) -> int:
    """A 63-bit seed for (run seed, step) pairs."""
    digest = hashlib.blake2b(f"{seed}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def build_method(config: PretrainConfig, in_chans: int) -> MoCoV3 | MAE:
    """Fresh MoCo v3 / MAE model (weights from ``torch.manual_seed(config.seed)``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        encoder = Encoder(build_vit(config.model, in_chans), feature=config.feature)
        if config.method == "moco":
            return MoCoV3(encoder, config.moco)
        return MAE(encoder, config.mae)


def total_steps(config: PretrainConfig, steps_per_epoch: int) -> int:
    """Number of optimiser steps of the run."""
    if config.optim.steps is not None:
        return int(config.optim.steps)
    return max(1, math.ceil(config.optim.epochs * steps_per_epoch))


def lr_at(config: PretrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """Linear warm-up then half-cosine decay; ``base_lr`` is per 256 samples."""
    o = config.optim
    peak = o.base_lr * o.batch_size / 256
    if o.warmup_epochs is not None:
        warm = int(round(o.warmup_epochs * steps_per_epoch))
    else:
        warm = int(round(o.warmup_frac * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return o.min_lr + (peak - o.min_lr) * 0.5 * (1 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(("pos_embed", "cls_token", "reg_token", "mask_token"))
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@contextlib.contextmanager
def frozen_heads(method: nn.Module) -> Iterator[None]:
    """Within the block, only ``method.encoder`` parameters collect gradients.

    Gradients still flow *through* the heads (MoCo projector/predictor, MAE decoder) to the
    encoder; the heads' own parameters are left to the full-width loss.
    """
    encoder = {id(p) for p in method.encoder.parameters()}
    heads = [p for p in method.parameters() if id(p) not in encoder and p.requires_grad]
    for p in heads:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in heads:
            p.requires_grad_(True)


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    with _io.atomic_path(path, fsync=False) as tmp:
        torch.save(obj, tmp)


def resolve_device(name: str) -> torch.device:
    """The training device of ``config.device``: ``"auto"`` is CUDA when available, else CPU.

    Raises:
        ValueError: a CUDA device was asked for on a machine without one (says to use
            ``device: auto`` or ``cpu``).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"config device={name!r} but CUDA is not available on this machine; "
                         "set device: auto (CUDA when present, else CPU) or device: cpu, e.g. "
                         "--set device=auto")
    return device


def _remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the ``.<file>.*.tmp`` files a killed run left in ``out`` (``save_atomic`` and
    the loss table write through them); returns what was removed. One run owns ``out``."""
    removed = []
    if out.is_dir():
        for name in (CHECKPOINT, ENCODER, LOSSES):
            for tmp in out.glob(f".{name}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    with _io.atomic_path(path, fsync=False) as tmp:
        frame.to_csv(tmp, index=False)


@contextlib.contextmanager
def _run_settings(config: PretrainConfig) -> Iterator[None]:
    """Deterministic algorithms and a fixed thread count for the run, then restore."""
    det, warn = torch.are_deterministic_algorithms_enabled(), \
        torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    try:
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _comparable(config_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config_dict.items() if k not in _RESUMABLE_CHANGES}


# ---------------------------------------------------------------------------- public API
@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes:
        encoder: the trained :class:`Encoder` (online encoder, in eval mode).
        method: the full MoCo v3 / MAE module (heads, momentum branch, decoder).
        config: the resolved config (``mean``/``std`` and ``model.in_chans`` filled in).
        step: optimiser steps done; ``total``: steps of the full schedule.
        losses: the loss table (also in ``out_dir/loss.csv`` when ``out_dir`` is set).
        elapsed_s: training wall time summed over all sessions of the run.
        fingerprint: :func:`data_fingerprint` of the training images.
    """

    encoder: Encoder
    method: nn.Module
    config: PretrainConfig
    step: int
    total: int
    losses: pd.DataFrame
    elapsed_s: float
    fingerprint: str
    out_dir: Path | None = None
    snapshots: dict[int, Path] = field(default_factory=dict)


def pretrain(
    config: PretrainConfig | dict | str | os.PathLike,
    data: Any,
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    max_steps: int | None = None,
    fingerprint: str | None = None,
    snapshot_steps: Any = None,
) -> PretrainResult:
    """Pretrain an encoder with MoCo v3 or MAE, regular or slimmable.

    Args:
        config: a :class:`PretrainConfig`, a dict or a YAML path.
        data: an :class:`~slimlib.specs.ImageDataset`, an image tensor ``(N, C, H, W)`` or a
            map-style dataset yielding ``(C, H, W)`` tensors (or ``(image, label)``) of one size.
        out_dir: folder for ``last.pt``, ``loss.csv`` and ``encoder.pt`` (``None``: keep
            everything in memory, no resume).
        resume: continue from ``out_dir/last.pt`` if present (its config must match).
        progress: show a tqdm bar.
        max_steps: stop after this many steps in total (the schedule still spans the full
            run), e.g. to split a run over sessions.
        fingerprint: precomputed :func:`data_fingerprint` (computed when ``None``).
        snapshot_steps: optimiser steps (ints >= 0; 0 is the initial encoder) after which the
            encoder is also written to ``out_dir/snapshots/encoder-step<step>.pt`` (the
            ``encoder.pt`` format, readable with :func:`load_encoder`); needs ``out_dir``.
            Snapshots change nothing in the run itself.

    Returns:
        :class:`PretrainResult`.

    Raises:
        ValueError: a checkpoint from a different config or dataset, or unusable data.
    """
    config = load_config(config)
    snap_steps = _check_snapshot_steps(snapshot_steps, out_dir)
    images = _images_of(data)
    if images is not None:
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(f"images must be a float tensor (N, C, H, W); got "
                             f"{images.dtype} {tuple(images.shape)}")
        source: _TensorSource = _TensorSource(images, config.optim.batch_size, config.seed)
    elif isinstance(data, Dataset):
        source = _LoaderSource(data, config.optim.batch_size, config.seed, config.num_workers)
    else:
        raise ValueError(f"data must be an ImageDataset, an image tensor or a torch Dataset; "
                         f"got {type(data).__name__}")
    in_chans = _in_chans(data)
    if config.model.in_chans is not None and config.model.in_chans != in_chans:
        raise ValueError(f"config.model.in_chans={config.model.in_chans} but the data has "
                         f"{in_chans} channels")
    changes: dict[str, Any] = {"model.in_chans": in_chans}
    if config.mean is None:
        mean, std = _channel_stats(data, source)
        changes.update(mean=mean, std=std)
    elif len(config.mean) != in_chans:
        raise ValueError(f"config.mean has {len(config.mean)} values but the data has "
                         f"{in_chans} channels")
    config = config.replace(**changes)
    fingerprint = fingerprint or data_fingerprint(data)
    out = Path(out_dir) if out_dir is not None else None
    device = resolve_device(config.device)
    if out is not None:
        _remove_stale_temporaries(out)

    with _run_settings(config):
        method = build_method(config, in_chans).to(device)
        optimizer = torch.optim.AdamW(_param_groups(method, config.optim.weight_decay),
                                      lr=0.0, betas=tuple(config.optim.betas))
        spe = source.steps_per_epoch
        total = total_steps(config, spe)
        stop = total if max_steps is None else min(total, int(max_steps))
        step, log, elapsed = 0, [], 0.0
        if out is not None and resume and (out / CHECKPOINT).exists():
            state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
            if _comparable(state["config"]) != _comparable(config.to_dict()):
                raise ValueError(f"{out / CHECKPOINT} was written by a different config; use "
                                 "another out_dir or resume=False")
            if state["fingerprint"] != fingerprint:
                raise ValueError(f"{out / CHECKPOINT} was trained on different data "
                                 f"(fingerprint {state['fingerprint']} != {fingerprint})")
            method.load_state_dict(state["method"])
            optimizer.load_state_dict(state["optimizer"])
            step, log, elapsed = state["step"], list(state["log"]), float(state["elapsed_s"])
            if hasattr(method, "momentum") and log:
                method.momentum = log[-1].get("momentum", method.momentum)

        augment = Augment(config.augment, config.model.img_size, torch.tensor(config.mean),
                          torch.tensor(config.std))
        slim_cfg = config.slimmable
        method.train()

        def checkpoint() -> None:
            if out is None:
                return
            save_atomic({"format": 1, "step": step, "total": total, "config": config.to_dict(),
                         "fingerprint": fingerprint, "method": method.state_dict(),
                         "optimizer": optimizer.state_dict(), "log": log,
                         "elapsed_s": elapsed}, out / CHECKPOINT)
            _write_csv_atomic(pd.DataFrame(log), out / LOSSES)

        def snapshot() -> None:
            if step in snap_steps and out is not None:
                path = out / SNAPSHOTS / f"encoder-step{step:06d}.pt"
                save_atomic({"format": 1, "state_dict": method.encoder.state_dict(),
                             "config": config.to_dict(), "fingerprint": fingerprint,
                             "step": step, "elapsed_s": elapsed}, path)

        if step == 0:
            snapshot()
        bar = tqdm(total=stop, initial=step, disable=not progress, leave=False,
                   desc=f"{config.method}{'-slimmable' if slim_cfg.enabled else ''}")
        batches = source.batches(step)
        amp = (torch.autocast(device.type, dtype=torch.bfloat16) if config.amp == "bf16"
               else contextlib.nullcontext())
        try:
            while step < stop:
                start = time.perf_counter()
                seed = _mix(config.seed, step)
                cpu_gen = torch.Generator().manual_seed(seed)
                dev_gen = (cpu_gen if device.type == "cpu"
                           else torch.Generator(device).manual_seed(seed))
                x = next(batches).to(device, non_blocking=True)
                lr = lr_at(config, step, total, spe)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                widths = (sandwich_widths(slim_cfg.num_widths, slim_cfg.min_width,
                                          slim_cfg.max_width, cpu_gen)
                          if slim_cfg.enabled else [1.0])
                optimizer.zero_grad(set_to_none=True)
                with torch.no_grad():
                    inputs = method.make_inputs(x, augment, dev_gen)
                with width(method.encoder, widths[0]), amp:
                    loss_full, targets = method.full_loss(inputs)
                loss_full.backward()
                sub = []
                for s in widths[1:]:
                    heads = (contextlib.nullcontext() if slim_cfg.train_heads
                             else frozen_heads(method))
                    with width(method.encoder, s), amp, heads:
                        loss_s = method.sub_loss(inputs, targets, slim_cfg.distill)
                    loss_s.backward()
                    sub.append(float(loss_s.detach()))
                if not math.isfinite(float(loss_full.detach())):
                    raise FloatingPointError(f"loss is {float(loss_full.detach())} at step "
                                             f"{step}; lower optim.base_lr or set "
                                             "optim.clip_grad")
                if config.optim.clip_grad is not None:
                    nn.utils.clip_grad_norm_(method.parameters(), config.optim.clip_grad)
                optimizer.step()
                step += 1
                extra = method.after_step(step / total)
                elapsed += time.perf_counter() - start
                snapshot()
                if step % config.log_every == 0 or step == stop:
                    row = {"step": step, "epoch": step / spe, "lr": lr,
                           "loss": float(loss_full.detach()) + sum(sub), "loss_full": float(loss_full.detach()),
                           "loss_sub": float(np.mean(sub)) if sub else float("nan"),
                           "min_width": min(widths), **extra, "elapsed_s": elapsed}
                    log.append(row)
                    bar.set_postfix(loss=f"{float(loss_full.detach()):.4f}")
                bar.update(1)
                if config.checkpoint_every and step % config.checkpoint_every == 0 and step < stop:
                    checkpoint()
        finally:
            bar.close()
        checkpoint()
        encoder = method.encoder
        losses = pd.DataFrame(log)
        if out is not None and step >= total:
            save_atomic({"format": 1, "state_dict": encoder.state_dict(),
                         "config": config.to_dict(), "fingerprint": fingerprint, "step": step,
                         "elapsed_s": elapsed}, out / ENCODER)
    method.eval()
    return PretrainResult(encoder=encoder, method=method, config=config, step=step, total=total,
                          losses=losses, elapsed_s=elapsed, fingerprint=fingerprint, out_dir=out,
                          snapshots=_existing_snapshots(out, snap_steps))


def _check_snapshot_steps(steps: Any, out_dir: Any) -> frozenset[int]:
    """``snapshot_steps`` as a set of ints >= 0 (``None``: none)."""
    if steps is None:
        return frozenset()
    if isinstance(steps, int | str) or not hasattr(steps, "__iter__"):
        raise ValueError(f"snapshot_steps must be a list of step numbers; got {steps!r}")
    out = set()
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or int(s) < 0:
            raise ValueError(f"snapshot_steps must hold ints >= 0; got {s!r}")
        out.add(int(s))
    if out and out_dir is None:
        raise ValueError("snapshot_steps needs out_dir (snapshots are written to "
                         "out_dir/snapshots/)")
    return frozenset(out)


def _existing_snapshots(out: Path | None, steps: frozenset[int]) -> dict[int, Path]:
    """The requested snapshots on disk (also those an earlier session of the run wrote)."""
    if out is None:
        return {}
    found = {s: out / SNAPSHOTS / f"encoder-step{s:06d}.pt" for s in sorted(steps)}
    return {s: p for s, p in found.items() if p.is_file()}


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Encoder:
    """Rebuild an :class:`Encoder` from ``encoder.pt`` (or ``last.pt``) written by :func:`pretrain`."""
    state = torch.load(path, map_location=map_location, weights_only=False)
    config = PretrainConfig.from_dict(state["config"])
    encoder = Encoder(build_vit(config.model, int(config.model.in_chans)), feature=config.feature)
    if "state_dict" in state:
        encoder.load_state_dict(state["state_dict"])
    else:
        prefix = "encoder."
        encoder.load_state_dict({k[len(prefix):]: v for k, v in state["method"].items()
                                 if k.startswith(prefix)})
    return encoder.eval()
