"""What a pretraining run keeps in its ``out_dir``, and reading it back.

The file names (:data:`CHECKPOINT` ``last.pt``, :data:`ENCODER` ``encoder.pt``,
:data:`LOSSES` ``loss.csv``, the :data:`SNAPSHOTS` folder), atomic writes
(:func:`save_atomic`, :func:`write_csv_atomic`) and the clean-up of a killed run's
temporaries, which config changes a resumed run may have (:func:`comparable`), the snapshot
steps, and :func:`load_encoder`, which rebuilds an encoder from ``encoder.pt`` or ``last.pt``.
The loop that writes them is :func:`slimlib.train.loop.pretrain`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from slimlib import _io
from slimlib.train.configs import PretrainConfig
from slimlib.train.encoder import TinyViTEncoder, build_vit

__all__ = ["CHECKPOINT", "ENCODER", "LOSSES", "SNAPSHOTS", "save_atomic", "write_csv_atomic",
           "remove_stale_temporaries", "comparable", "check_snapshot_steps",
           "existing_snapshots", "load_encoder"]

#: The run's resumable checkpoint; ``ENCODER``: the encoder-only result; ``LOSSES``: the loss table.
CHECKPOINT = "last.pt"
ENCODER = "encoder.pt"
LOSSES = "loss.csv"
#: Folder of ``out_dir`` that holds the encoder snapshots (``pretrain(snapshot_steps=...)``).
SNAPSHOTS = "snapshots"
#: Config fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("device", "num_workers", "checkpoint_every", "log_every", "num_threads")


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    with _io.atomic_path(path, fsync=False) as tmp:
        torch.save(obj, tmp)


def remove_stale_temporaries(out: Path) -> list[Path]:
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


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV through a temporary file (the loss table)."""
    with _io.atomic_path(path, fsync=False) as tmp:
        frame.to_csv(tmp, index=False)


def comparable(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The config fields a resumed run must share with its checkpoint."""
    return {k: v for k, v in config_dict.items() if k not in _RESUMABLE_CHANGES}


def check_snapshot_steps(steps: Any, out_dir: Any) -> frozenset[int]:
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


def existing_snapshots(out: Path | None, steps: frozenset[int]) -> dict[int, Path]:
    """The requested snapshots on disk (also those an earlier session of the run wrote)."""
    if out is None:
        return {}
    found = {s: out / SNAPSHOTS / f"encoder-step{s:06d}.pt" for s in sorted(steps)}
    return {s: p for s, p in found.items() if p.is_file()}


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TinyViTEncoder:
    """Rebuild an :class:`TinyViTEncoder` from ``encoder.pt`` (or ``last.pt``) written by :func:`pretrain`."""
    state = torch.load(path, map_location=map_location, weights_only=False)
    config = PretrainConfig.from_dict(state["config"])
    encoder = TinyViTEncoder(build_vit(config.model, int(config.model.in_chans)), feature=config.feature)
    if "state_dict" in state:
        encoder.load_state_dict(state["state_dict"])
    else:
        prefix = "encoder."
        encoder.load_state_dict({k[len(prefix):]: v for k, v in state["method"].items()
                                 if k.startswith(prefix)})
    return encoder.eval()
