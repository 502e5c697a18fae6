"""Location helpers kept for code written against them; the settings themselves live in
:mod:`slimlib.settings` (the one module that reads ``SLIMLIB_DATA``, ``SLIMLIB_CACHE``,
``SLIMLIB_RESULTS`` and ``SLIMLIB_WEIGHTS``).

:func:`data_root` validates an explicit root (it never reads the environment);
:func:`cache_dir` and :func:`results_dir` take the folder from ``base=`` or, when called
directly by user code without one, from :func:`slimlib.settings.current`.
"""

from __future__ import annotations

import os
from pathlib import Path

from slimlib.constants import EMBEDDED_FOLDERS
from slimlib.settings import CACHE_ENV, DATA_ENV, RESULTS_ENV, WEIGHTS_ENV, Settings

__all__ = ["DATA_ENV", "CACHE_ENV", "RESULTS_ENV", "WEIGHTS_ENV", "data_root", "cache_dir",
           "results_dir"]


def data_root(root: str | os.PathLike | None = None, *, required: bool = True,
              source: str = "root=") -> Path | None:
    """Check the data root ``root`` (an explicit value: an argument or ``Settings.data``).

    Returns:
        The root folder, or ``None`` when ``root`` is ``None`` and ``required`` is false.

    Raises:
        FileNotFoundError: when ``required`` and no root is given, or whenever a given root
            is not a folder.
    """
    if root is None or str(root) == "":
        if required:
            raise FileNotFoundError(
                f"No data root: pass root=... or set the environment variable {DATA_ENV} to the "
                f"folder holding {', '.join(f + '/' for fs in EMBEDDED_FOLDERS.values() for f in fs)}"
                " (see docs/data.md for how to get them)."
            )
        return None
    path = Path(root).expanduser()
    if not path.is_dir():
        # a root that was given but is wrong is an error even when a root is optional:
        # silently falling back to synthetic data would pass off fake numbers as real ones
        raise FileNotFoundError(
            f"Data root {str(path)!r} (from {source}) does not exist or is not a folder "
            f"(relative paths are resolved against the current directory, {os.getcwd()!r}). "
            f"Give an absolute path, or unset {DATA_ENV} to use the synthetic fallback."
        )
    return path


def _settings(settings: Settings | None) -> Settings:
    from slimlib.settings import or_current

    return or_current(settings)


def cache_dir(sub: str | None = None, *, base: str | os.PathLike | None = None,
              settings: Settings | None = None) -> Path:
    """Cache folder (created on demand), optionally a named subfolder; ``base`` (or
    ``settings.cache``) is the cache root."""
    root = Path(base) if base is not None else _settings(settings).cache
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(*, base: str | os.PathLike | None = None,
                settings: Settings | None = None) -> Path:
    """Folder for tidy result tables (created on demand): ``base`` or ``settings.results``."""
    path = Path(base) if base is not None else _settings(settings).results
    path.mkdir(parents=True, exist_ok=True)
    return path
