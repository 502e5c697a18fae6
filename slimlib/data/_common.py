"""Helpers shared by the dataset loaders: subsets, skipped files, parallel decoding."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def check_split(name: str, split: str, splits: Sequence[str], aliases: dict[str, str] | None = None
                ) -> str:
    """Return the canonical split name or raise ``ValueError`` listing the valid ones."""
    aliases = aliases or {}
    split = aliases.get(split, split) if isinstance(split, str) else split
    if split not in splits:
        extra = f" (aliases: {aliases})" if aliases else ""
        raise ValueError(f"{name!r} has splits {tuple(splits)}{extra}; got split={split!r}")
    return split


def check_limit(limit_per_class: int | None) -> int | None:
    if limit_per_class is None:
        return None
    if isinstance(limit_per_class, bool) or not isinstance(limit_per_class, int | np.integer) \
            or limit_per_class < 1:
        raise ValueError(f"limit_per_class must be a positive int or None; got {limit_per_class!r}")
    return int(limit_per_class)


def stratified_subset(labels: Sequence[int], limit_per_class: int | None, seed: int = 0
                      ) -> np.ndarray:
    """Indices keeping at most ``limit_per_class`` items of every class.

    Deterministic: within each class a ``numpy.random.default_rng(seed)`` permutation picks
    the items; the result is sorted so the original order is kept.
    """
    labels = np.asarray(labels)
    if limit_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > limit_per_class:
            idx = np.sort(rng.permutation(idx)[:limit_per_class])
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def even_subset(n: int, limit: int | None) -> np.ndarray:
    """``limit`` evenly spaced indices out of ``n`` (all of them when ``limit`` is None)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be a positive int or None; got {limit!r}")
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def num_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 1) * 2))


def parallel_map(fn: Callable[[T], Any], items: Sequence[T], desc: str, threads: int | None = None
                 ) -> list[Any]:
    """``[fn(x) for x in items]`` on a thread pool (PIL and file reads release the GIL)."""
    from tqdm.auto import tqdm

    threads = threads or num_workers()
    disable = len(items) < 500
    if threads == 1 or len(items) < 64:
        return [fn(x) for x in tqdm(items, desc=desc, disable=disable, leave=False)]
    with ThreadPoolExecutor(threads) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=disable,
                         leave=False))


class SkipLog:
    """Collects files a loader could not use; warns per file and once in total.

    Nothing is dropped silently: every skipped file gets its own ``UserWarning`` naming it,
    and :meth:`finish` emits one summary warning and returns the note to append to
    :attr:`ImageDataset.notes`.
    """

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.skipped: list[tuple[str, str]] = []

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append((path, reason))
        warnings.warn(f"{self.dataset}: skipping {path}: {reason}", UserWarning, stacklevel=3)

    def finish(self, total: int) -> list[str]:
        if not self.skipped:
            return []
        note = (f"{len(self.skipped)} of {total} images skipped (unreadable, missing or "
                f"corrupt): " + ", ".join(p for p, _ in self.skipped[:10])
                + (" …" if len(self.skipped) > 10 else ""))
        warnings.warn(f"{self.dataset}: {note}", UserWarning, stacklevel=3)
        return [note]


def check_memory(n: int, shape: Iterable[int], max_gib: float | None, what: str,
                 hint: str) -> None:
    """Refuse to allocate a float32 array of ``n`` items of ``shape`` above ``max_gib`` GiB."""
    if max_gib is None:
        return
    gib = n * int(np.prod(list(shape))) * 4 / 2**30
    if gib > max_gib:
        raise ValueError(f"{what} would need {gib:.1f} GiB as float32 (limit max_gib={max_gib}); "
                         f"{hint}")


def online(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_online(host: str, what: str, how: str) -> None:
    """Fail fast (a few seconds at most) with ``ConnectionError`` when ``host`` is unreachable."""
    from slimlib.settings import env_flag

    if "hugging" in host and env_flag("HF_HUB_OFFLINE"):
        raise ConnectionError(f"Cannot download {what}: HF_HUB_OFFLINE is set. {how}")
    if not online(host):
        raise ConnectionError(f"Cannot download {what}: {host} is unreachable (offline?). {how}")
