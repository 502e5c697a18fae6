"""Where slimlib reads data and writes caches, results and looks for weights: one object.

:class:`Settings` holds the four locations as absolute paths. It is built **once**, at an
entry point (the CLI ``python -m slimlib``, the book's Sphinx extension, the chapter runner,
:func:`slimlib.book.profiles.resolve`, ``python -m slimlib.train``), and travels down as an
argument (``settings=``) or as its fields (``root=``, ``cache=``, ...); a SLURM job gets the
sweep command's object pickled (:class:`slimlib.scale.JobSettings`).

This module is the ONE place that reads slimlib's environment variables:

============================  ====================================================================
``SLIMLIB_DATA``              data root of the embedded datasets (unset: synthetic fallback)
``SLIMLIB_CACHE``             checkpoints, feature caches, downloads (default ``~/.cache/slimlib``)
``SLIMLIB_RESULTS``           result tables (default ``<repository>/results``: the nearest folder
                              above the launching folder holding ``pyproject.toml`` and
                              ``slimlib/``, else ``<launching folder>/results``)
``SLIMLIB_WEIGHTS``           a folder of published checkpoints ``<root>/<model>/<file>``
``GEO_BENCH_DIR``             GEO-Bench's own variable (its ``classification_v1.0/`` parent)
``IMAGENET_DIR``              a local ImageNet copy (ImageFolder layout)
``SLIMLIB_PROFILE``           the book profile (read by :func:`profile_name`)
``SLIMLIB_OFFLINE``, ...      offline flags of slimlib and of third-party hubs (:func:`env_flag`)
``HF_HOME`` + offline flags   what a child process must inherit for the hubs (:func:`process_env`)
============================  ====================================================================

An entry point with command-line flags passes them to :meth:`Settings.from_env` (``data=``,
``cache=``, ...): a flag wins over its variable, in the one place both are read.

Relative paths are resolved against the launching folder (``cwd=``, default the current
folder) when the settings are built, so a chapter kernel that starts in ``notebooks/`` or a
SLURM job on another node sees the same absolute folders.

The rule (``docs/architecture.md``, "Settings"): public functions a user calls directly
(``models.load``, ``data.load``, ``sweep``, ``features.extract``, ``diagnose``, ...) take
``settings=`` (and their own ``root=`` / ``weights=`` overrides); when it is ``None`` they
call :func:`current` once, at that boundary. Everything below receives explicit values and
never reads the environment (``tests/test_settings_env.py`` checks both).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "current", "or_current", "env_flag", "profile_name", "process_env",
           "DATA_ENV", "CACHE_ENV", "RESULTS_ENV", "WEIGHTS_ENV", "PROFILE_ENV", "GEO_BENCH_ENV",
           "IMAGENET_ENV", "OFFLINE_ENVS", "PROCESS_ENVS"]

DATA_ENV = "SLIMLIB_DATA"
CACHE_ENV = "SLIMLIB_CACHE"
RESULTS_ENV = "SLIMLIB_RESULTS"
WEIGHTS_ENV = "SLIMLIB_WEIGHTS"
PROFILE_ENV = "SLIMLIB_PROFILE"
GEO_BENCH_ENV = "GEO_BENCH_DIR"
IMAGENET_ENV = "IMAGENET_DIR"
#: Flags that switch every download off (slimlib's own and the hubs' standard ones).
OFFLINE_ENVS = ("SLIMLIB_OFFLINE", "HF_HUB_OFFLINE")
#: Process-level variables that are not locations of :class:`Settings`: read by third-party
#: hubs (and :func:`env_flag`) in the process itself, so a child process (a SLURM job) must
#: be started with them (:func:`process_env`).
PROCESS_ENVS = ("HF_HOME", *OFFLINE_ENVS)
#: The variable of each :class:`Settings` field.
_FIELD_ENVS = {"data": DATA_ENV, "cache": CACHE_ENV, "results": RESULTS_ENV,
               "weights": WEIGHTS_ENV, "geobench": GEO_BENCH_ENV, "imagenet": IMAGENET_ENV}


def _repo_root(start: Path) -> Path:
    """The nearest folder above ``start`` holding ``pyproject.toml`` and ``slimlib/``, else
    ``start`` (the same rule as :func:`slimlib.book.profiles.repo_root`)."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "slimlib").is_dir():
            return folder
    return start


@dataclass(frozen=True)
class Settings:
    """Every location slimlib uses, as absolute paths.

    Attributes:
        data: data root of the embedded datasets (``None``: none; synthetic fallback).
        cache: checkpoints (``checkpoints/``), features (``features/``), weights
            (``weights/``) and downloads.
        results: result tables; a book profile writes under ``<results>/<profile>/``.
        weights: a weights root searched first for published checkpoints (``None``: none).
        geobench: GEO-Bench folder (``$GEO_BENCH_DIR``; ``None``: ``<data>/geobench``, then
            ``<cache>/geobench``).
        imagenet: a local ImageNet folder (``$IMAGENET_DIR``; ``None``: none).
    """

    data: Path | None
    cache: Path
    results: Path
    weights: Path | None = None
    geobench: Path | None = None
    imagenet: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 cwd: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None,
                 cache: str | os.PathLike | None = None,
                 results: str | os.PathLike | None = None,
                 weights: str | os.PathLike | None = None,
                 geobench: str | os.PathLike | None = None,
                 imagenet: str | os.PathLike | None = None) -> Settings:
        """The settings from ``environ`` (default ``os.environ``), relative paths resolved
        against ``cwd`` (default: the current folder), missing ones from the defaults.

        ``data``, ``cache``, ... (an entry point's command-line flags) win over their
        variables when given (``None`` or ``""``: not given); ``environ`` is not modified.

        Raises:
            FileNotFoundError: the data root (``data`` or ``SLIMLIB_DATA``) is set but is not
                a folder (the message says which path was tried and what to do); a wrong root
                is never silently replaced by synthetic data.
        """
        given = {key: value for key, value in (
            ("data", data), ("cache", cache), ("results", results), ("weights", weights),
            ("geobench", geobench), ("imagenet", imagenet)) if value is not None and str(value)}
        env = {**(os.environ if environ is None else environ),
               **{_FIELD_ENVS[key]: str(value) for key, value in given.items()}}
        base = Path(cwd if cwd is not None else os.getcwd()).expanduser().resolve()

        def absolute(value: str | os.PathLike | None) -> Path | None:
            if value is None or str(value) == "":
                return None
            path = Path(value).expanduser()
            return (path if path.is_absolute() else base / path).resolve()

        root = absolute(env.get(DATA_ENV))
        if root is not None and not root.is_dir():
            source, what, off = ((f"given as {str(given['data'])!r}", "it", "leave it out")
                                 if "data" in given else
                                 (f"from ${DATA_ENV}={env.get(DATA_ENV)!r}", DATA_ENV, "unset it"))
            raise FileNotFoundError(
                f"Data root {str(root)!r} ({source}, relative paths are taken against "
                f"{str(base)!r}) does not exist or is not a folder. Point {what} at the folder "
                "holding eurosat_rgb/, eurosat_ms/, ucmerced/, cifar10_train/, cifar10_test/ "
                f"(see docs/data.md), or {off} to use the labelled synthetic fallback.")
        cache = absolute(env.get(CACHE_ENV)) or (Path.home() / ".cache" / "slimlib").resolve()
        results = absolute(env.get(RESULTS_ENV)) or _repo_root(base) / "results"
        return cls(data=root, cache=cache, results=results,
                   weights=absolute(env.get(WEIGHTS_ENV)),
                   geobench=absolute(env.get(GEO_BENCH_ENV)),
                   imagenet=absolute(env.get(IMAGENET_ENV)))

    def replace(self, **changes: str | os.PathLike | None) -> Settings:
        """A copy with some fields changed (paths made absolute against the current folder;
        an explicit data root must be a folder)."""
        fixed: dict[str, Path | None] = {}
        for key, value in changes.items():
            fixed[key] = None if value is None else Path(value).expanduser().resolve()
        if fixed.get("data") is not None and not fixed["data"].is_dir():
            raise FileNotFoundError(f"data root {str(fixed['data'])!r} is not a folder")
        return dataclasses.replace(self, **fixed)

    def data_root(self, root: str | os.PathLike | None = None) -> Path | None:
        """``root`` when given (an explicit argument wins), else :attr:`data`."""
        return Path(root).expanduser() if root is not None else self.data

    def cache_dir(self, sub: str | None = None) -> Path:
        """The cache folder (created on demand), optionally a named subfolder."""
        path = self.cache / sub if sub else self.cache
        path.mkdir(parents=True, exist_ok=True)
        return path

    def results_dir(self) -> Path:
        """The results folder (created on demand)."""
        self.results.mkdir(parents=True, exist_ok=True)
        return self.results

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for a child process an entry point
        starts (a chapter kernel, a SLURM job); unset fields are left out."""
        pairs = {env: getattr(self, key) for key, env in _FIELD_ENVS.items()}
        return {key: str(value) for key, value in pairs.items() if value is not None}


def current() -> Settings:
    """:meth:`Settings.from_env` of this process: only public entry functions call it, when
    their caller gave no ``settings=``."""
    return Settings.from_env()


def or_current(settings: Settings | None) -> Settings:
    """``settings``, or :func:`current` when ``None`` (the one boundary idiom)."""
    if settings is None:
        return current()
    if not isinstance(settings, Settings):
        raise TypeError(f"settings must be a slimlib.settings.Settings; got "
                        f"{type(settings).__name__} (build one with Settings.from_env())")
    return settings


def env_flag(*names: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether any of the environment variables ``names`` is set to a true value
    (``1``, ``true``, ``yes``, ``on``). The one reader of on/off flags such as the
    third-party offline switches (``HF_HUB_OFFLINE``), which the hubs read themselves."""
    env = os.environ if environ is None else environ
    return any(str(env.get(k, "")).strip().lower() in ("1", "true", "yes", "on") for k in names)


def profile_name(environ: Mapping[str, str] | None = None) -> str | None:
    """``$SLIMLIB_PROFILE`` (``None`` when unset or empty)."""
    env = os.environ if environ is None else environ
    return env.get(PROFILE_ENV) or None


def process_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The :data:`PROCESS_ENVS` set (non-empty) in ``environ`` (default ``os.environ``): what
    an entry point hands a child process it starts (a SLURM job) besides its
    :class:`Settings`."""
    env = os.environ if environ is None else environ
    return {key: env[key] for key in PROCESS_ENVS if env.get(key)}
