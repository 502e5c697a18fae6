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

The loop itself lives here (with its schedule: :func:`build_method`, :func:`total_steps`,
:func:`lr_at`, :func:`frozen_heads`); its batch sources and data checks are
:mod:`slimlib.train.sources`, its files in ``out_dir`` :mod:`slimlib.train.checkpoints`
(both re-exported here under their old names).
"""

from __future__ import annotations

import contextlib
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
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from slimlib.train.augment import Augment
from slimlib.train.checkpoints import (
    CHECKPOINT,
    ENCODER,
    LOSSES,
    SNAPSHOTS,
    check_snapshot_steps,
    comparable,
    existing_snapshots,
    load_encoder,
    remove_stale_temporaries,
    save_atomic,
    write_csv_atomic,
)
from slimlib.train.configs import PretrainConfig, load_config
from slimlib.train.encoder import TinyViTEncoder, build_vit
from slimlib.train.mae import MAE
from slimlib.train.moco import MoCoV3
from slimlib.train.slimmable import sandwich_widths, width
from slimlib.train.sources import (
    LoaderSource,
    TensorSource,
    channel_stats,
    data_fingerprint,
    images_of,
    in_chans_of,
    mix_seed,
)

__all__ = [
    "pretrain", "PretrainResult", "build_method", "load_encoder", "save_atomic",
    "data_fingerprint", "total_steps", "lr_at", "frozen_heads", "resolve_device",
    # also re-exported: the out_dir file names
    "CHECKPOINT", "ENCODER", "LOSSES", "SNAPSHOTS",
]


def build_method(config: PretrainConfig, in_chans: int) -> MoCoV3 | MAE:
    """Fresh MoCo v3 / MAE model (weights from ``torch.manual_seed(config.seed)``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        encoder = TinyViTEncoder(build_vit(config.model, in_chans), feature=config.feature)
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


# ---------------------------------------------------------------------------- public API
@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes:
        encoder: the trained :class:`TinyViTEncoder` (online encoder, in eval mode).
        method: the full MoCo v3 / MAE module (heads, momentum branch, decoder).
        config: the resolved config (``mean``/``std`` and ``model.in_chans`` filled in).
        step: optimiser steps done; ``total``: steps of the full schedule.
        losses: the loss table (also in ``out_dir/loss.csv`` when ``out_dir`` is set).
        elapsed_s: training wall time summed over all sessions of the run.
        fingerprint: :func:`data_fingerprint` of the training images.
    """

    encoder: TinyViTEncoder
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
    snap_steps = check_snapshot_steps(snapshot_steps, out_dir)
    images = images_of(data)
    if images is not None:
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(f"images must be a float tensor (N, C, H, W); got "
                             f"{images.dtype} {tuple(images.shape)}")
        source: TensorSource = TensorSource(images, config.optim.batch_size, config.seed)
    elif isinstance(data, Dataset):
        source = LoaderSource(data, config.optim.batch_size, config.seed, config.num_workers)
    else:
        raise ValueError(f"data must be an ImageDataset, an image tensor or a torch Dataset; "
                         f"got {type(data).__name__}")
    in_chans = in_chans_of(data)
    if config.model.in_chans is not None and config.model.in_chans != in_chans:
        raise ValueError(f"config.model.in_chans={config.model.in_chans} but the data has "
                         f"{in_chans} channels")
    changes: dict[str, Any] = {"model.in_chans": in_chans}
    if config.mean is None:
        mean, std = channel_stats(data, source)
        changes.update(mean=mean, std=std)
    elif len(config.mean) != in_chans:
        raise ValueError(f"config.mean has {len(config.mean)} values but the data has "
                         f"{in_chans} channels")
    config = config.replace(**changes)
    fingerprint = fingerprint or data_fingerprint(data)
    out = Path(out_dir) if out_dir is not None else None
    device = resolve_device(config.device)
    if out is not None:
        remove_stale_temporaries(out)

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
            if comparable(state["config"]) != comparable(config.to_dict()):
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
            write_csv_atomic(pd.DataFrame(log), out / LOSSES)

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
                seed = mix_seed(config.seed, step)
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
                          snapshots=existing_snapshots(out, snap_steps))
