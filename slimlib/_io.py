"""File helpers shared by every writer: temporary files that respect the umask, a lock per file.

``tempfile.mkstemp`` creates files with mode 0600; a file ``os.replace``\\ d from it keeps that
mode, so results and caches written atomically would be unreadable to the rest of a group
sharing a results folder. :func:`mkstemp` gives the temporary file the mode a plain ``open``
would (``0666 & ~umask``, 0644 with the usual umask 022).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["mkstemp", "default_mode", "file_lock", "atomic_path", "atomic_write",
           "parameter_hash"]

_UMASK_LOCK = threading.Lock()


def default_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    with _UMASK_LOCK:  # reading the umask means setting it; keep other threads out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def mkstemp(dir: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``dir`` whose file has :func:`default_mode`, not 0600."""
    fd, tmp = tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix)
    try:
        os.fchmod(fd, default_mode())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


_LOCKS: dict[str, object] = {}
_LOCKS_GUARD = threading.Lock()


def file_lock(path: str | os.PathLike, timeout: float = 600.0):
    """The (re-entrant, per-thread) inter-process lock guarding ``path``: a ``filelock.FileLock``
    on ``<folder>/.<name>.lock``. One lock object per path and process, so nested ``with``
    blocks in one thread do not deadlock."""
    from filelock import FileLock

    path = Path(path).resolve()
    lock_path = str(path.with_name(f".{path.name}.lock"))
    with _LOCKS_GUARD:
        lock = _LOCKS.get(lock_path)
        if lock is None:
            lock = _LOCKS[lock_path] = FileLock(lock_path, timeout=timeout, mode=default_mode())
    return lock


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp",
                fsync: bool = True) -> Iterator[Path]:
    """The one atomic-write recipe: yield a fresh temporary path next to ``path``, then move it
    into place.

    The temporary file is ``<folder>/.<name>.<random>.<suffix>`` (unique, so concurrent writers
    never share one; mode from the umask, see :func:`mkstemp`). The body writes the file by
    name (``torch.save``, ``DataFrame.to_csv``, ``np.savez``, a download); on success it is
    fsynced (``fsync=True``) and ``os.replace``\\ d onto ``path``; on any failure, including
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` keeps its old content.
    The parent folder is created on demand.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = mkstemp(path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text written as UTF-8 without newline translation) to ``path``
    atomically through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(data)
        else:
            tmp.write_bytes(data)


def parameter_hash(parameters: Any) -> str:
    """8 hex digits naming a file after JSON-able ``parameters`` (key order does not matter):
    chapter runs and the FLOP-table cache."""
    text = json.dumps(parameters, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
