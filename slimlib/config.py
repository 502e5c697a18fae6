"""Where slimlib reads data and writes caches, resolved from settings.

``SLIMLIB_DATA``    root of the embedded real datasets (see ``docs/data.md``).
``SLIMLIB_CACHE``   checkpoints and feature caches (default ``~/.cache/slimlib``).
``SLIMLIB_RESULTS`` tidy sweep tables (default ``./results``).
``SLIMLIB_WEIGHTS`` a folder of published checkpoints, ``<root>/<model>/<file>``, searched
                    before the cache and any download (read by ``slimlib.models.load``).
"""

from __future__ import annotations

import os
from pathlib import Path

from slimlib.constants import EMBEDDED_FOLDERS

DATA_ENV = "SLIMLIB_DATA"
CACHE_ENV = "SLIMLIB_CACHE"
RESULTS_ENV = "SLIMLIB_RESULTS"
WEIGHTS_ENV = "SLIMLIB_WEIGHTS"


def data_root(root: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """Resolve the data root from ``root`` or ``$SLIMLIB_DATA``.

    Returns:
        The root folder, or ``None`` when no root is given and ``required`` is false.

    Raises:
        FileNotFoundError: when ``required`` and no root is given, or whenever a given root
            (argument or environment) is not a folder.
    """
    value = root if root is not None else os.environ.get(DATA_ENV)
    if not value:
        if required:
            raise FileNotFoundError(
                f"No data root: pass root=... or set the environment variable {DATA_ENV} to the "
                f"folder holding {', '.join(f + '/' for fs in EMBEDDED_FOLDERS.values() for f in fs)}"
                " (see docs/data.md for how to get them)."
            )
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        # a root that was given but is wrong is an error even when a root is optional:
        # silently falling back to synthetic data would pass off fake numbers as real ones
        raise FileNotFoundError(
            f"Data root {str(path)!r} (from {'root=' if root is not None else DATA_ENV}) "
            f"does not exist or is not a folder (relative paths are resolved against the "
            f"current directory, {os.getcwd()!r}). Give an absolute path, or unset "
            f"{DATA_ENV} to use the synthetic fallback."
        )
    return path


def absolutize_env() -> dict[str, str]:
    """Rewrite relative ``$SLIMLIB_DATA``/``$SLIMLIB_CACHE``/``$SLIMLIB_RESULTS`` as absolute
    paths (against the current directory), in place; return the ones changed.

    Jupyter Book and papermill start each chapter's kernel in the chapter's folder, so a
    relative setting such as ``SLIMLIB_DATA=../data`` would point elsewhere there.
    The book's Sphinx extension (:mod:`slimlib.sphinxext`) and
    :func:`slimlib.chapters.run_chapter` call this before any kernel starts.
    """
    changed = {}
    for name in (DATA_ENV, CACHE_ENV, RESULTS_ENV, WEIGHTS_ENV):
        value = os.environ.get(name)
        if value and not Path(value).expanduser().is_absolute():
            os.environ[name] = changed[name] = str(Path(value).expanduser().resolve())
    return changed


def cache_dir(sub: str | None = None) -> Path:
    """Cache folder (created on demand), optionally a named subfolder."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "slimlib").expanduser()
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Folder for tidy result tables (created on demand)."""
    path = Path(os.environ.get(RESULTS_ENV) or "results").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
