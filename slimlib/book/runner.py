"""Run a book chapter (a Jupytext py:percent notebook) headless with papermill.

:func:`run_chapter` reads ``notebooks/NN_name.py`` with jupytext, executes it in memory with
papermill (the ``parameters``-tagged cell gets the overrides injected after it) and writes
the executed notebook to ``<out_dir>/<chapter>/<UTC timestamp>-<parameter hash>.ipynb``.
While it runs the notebook is ``….running.ipynb``; only a run whose every cell finished gets
the plain ``.ipynb`` name. A cell that raises or times out leaves ``….failed.ipynb``,
Ctrl-C (or SIGTERM from the CLI) ``….interrupted.ipynb``; both are marked failed inside
(``papermill.exception``, per-cell status, a banner cell) and the error is re-raised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimlib import _io
from slimlib._io import parameter_hash as _hash
from slimlib._validation import require

__all__ = ["KERNEL", "run_chapter", "list_chapters", "parse_value", "chapter_parameters"]

#: Kernel every chapter runs on (registered in the venv by ``scripts/setup.sh``).
KERNEL = "python3"


def list_chapters(folder: str | os.PathLike = "notebooks") -> list[Path]:
    """The chapter files ``NN_*.py`` of ``folder``, in book order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no chapter folder {str(folder)!r}; run from the repository root "
                                "or pass the notebooks folder")
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def parse_value(text: str) -> Any:
    """A ``-p`` value: JSON first, then YAML (``'[a, b]'``, ``0.5``, ``true``, ``rs-mae-tiny``).

    Raises:
        ValueError: ``text`` is neither JSON nor YAML (e.g. ``'[1, 2'``); it is never passed
            on as a string.
    """
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"parameter value {text!r} is neither JSON nor YAML ({first}); quote "
                         "strings and close brackets, e.g. '[\"rs-mae-tiny\"]'") from None


def _read(path: str | os.PathLike):
    """The chapter as a notebook node with a kernelspec and a ``tags`` list on every cell
    (papermill looks the ``parameters`` tag up on each cell)."""
    jupytext = require("jupytext", "book")

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": KERNEL, "language": "python", "display_name": "Python 3"}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def chapter_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """Names and default values (as source text) declared in a chapter's ``parameters`` cell.

    Raises ``ValueError`` when the chapter has no cell tagged ``parameters``.
    """
    from papermill.inspection import _infer_parameters

    nb = _read(path)
    if not any("parameters" in c.metadata["tags"] for c in nb.cells):
        raise ValueError(f"{path}: no cell tagged 'parameters' (use '# %% tags=[\"parameters\"]')")
    return {p.name: p.default for p in _infer_parameters(nb)}


def run_chapter(path: str | os.PathLike, parameters: Mapping[str, Any] | None = None,
                out_dir: str | os.PathLike = "runs", *, timeout: int | None = 3600,
                cwd: str | os.PathLike | None = None, progress: bool = False,
                env: Mapping[str, str] | None = None) -> Path:
    """Execute one chapter with papermill and return the executed ``.ipynb``.

    Args:
        path: a ``notebooks/NN_name.py`` chapter (py:percent with a ``parameters`` cell).
        parameters: overrides for the parameters cell (e.g. ``{"models": ["rs-mae-tiny"],
            "profile": "smoke"}``); names the chapter does not declare raise ``ValueError``.
        out_dir: runs land in ``<out_dir>/<chapter stem>/``.
        timeout: per-cell timeout in seconds (``None``: no limit).
        cwd: working directory of the kernel (default: the chapter's folder, as in the book).
        progress: show papermill's cell progress bar.
        env: extra environment variables for the kernel (e.g. ``{"SLIMLIB_RESULTS": ...}``).

    This is an entry point: the settings (:meth:`slimlib.settings.Settings.from_env` of this
    process's environment with ``env`` on top, relative paths taken against the current
    folder) are resolved here, once, and the kernel gets them as absolute
    ``SLIMLIB_*`` variables in its own environment; this process's ``os.environ`` is not
    changed.

    Parameters that are profile settings (``profile``, ``models``, ``seeds``, ...) are
    validated with :func:`slimlib.book.profiles.check_parameters` before a kernel starts.

    Raises:
        FileNotFoundError: no such chapter, or a data root that lacks the profile's datasets.
        ValueError: unknown parameter names, or a value of the wrong type or range.
        papermill.PapermillExecutionError: a cell raised; the notebook is written as
            ``….failed.ipynb`` (its path is the exception's ``notebook_path``).
        TimeoutError: a cell ran longer than ``timeout`` (``….failed.ipynb``).
        KeyboardInterrupt: interrupted (``….interrupted.ipynb``).
    """
    papermill = require("papermill", "book")

    from slimlib.settings import Settings

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no chapter {str(path)!r}; chapters: "
                                f"{[p.name for p in list_chapters(path.parent)] if path.parent.is_dir() else []}")
    parameters = dict(parameters or {})
    declared = chapter_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"chapter {path.name} has no parameter(s) {unknown}; it declares "
                         f"{sorted(declared)}")
    nb = _read(path)
    if isinstance(parameters.get("data_root"), str | os.PathLike):
        # the kernel runs in ``cwd``; a relative root means "relative to where I called from"
        parameters["data_root"] = str(Path(parameters["data_root"]).expanduser().resolve())
    kernel_env = {**os.environ, **(env or {})}  # this entry point reads its environment
    kernel_env.update(Settings.from_env(kernel_env).as_env())  # absolute, before any kernel
    from slimlib.book.profiles import check_parameters

    # type and range errors now, not from inside the kernel
    check_parameters(parameters, environ=kernel_env)
    out = _reserve(Path(out_dir) / path.stem, _hash(parameters))
    running = out.with_suffix(".running.ipynb")
    try:
        papermill.execute_notebook(
            nb, str(running), parameters=parameters, kernel_name=KERNEL, language="python",
            cwd=str(cwd or path.parent.resolve()), progress_bar=progress,
            execution_timeout=timeout, log_output=False,
            kernel_manager_class=_kernel_manager(kernel_env),
        )
    except papermill.PapermillExecutionError as err:
        err.notebook_path = _finish(running, out, "failed", None)
        raise
    except BaseException as err:
        interrupted = isinstance(err, KeyboardInterrupt)
        reason = ("interrupted (KeyboardInterrupt)" if interrupted else
                  f"timed out: a cell ran longer than {timeout} s" if isinstance(
                      err, TimeoutError) else f"stopped by {type(err).__name__}: {err}")
        err.notebook_path = _finish(running, out, "interrupted" if interrupted else "failed",
                                    reason)
        raise
    os.replace(running, out)
    return out


def _reserve(folder: Path, digest: str) -> Path:
    """A fresh ``<folder>/<UTC stamp>-<digest>[-n].ipynb`` name, claimed atomically (its
    ``.running.ipynb`` is created with ``O_EXCL``), so runs started in the same second never
    share, and so never overwrite, one notebook."""
    from slimlib._io import default_mode

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{digest}"
    for n in range(1, 10_000):
        out = folder / (stem if n == 1 else f"{stem}-{n}")
        out = out.with_name(out.name + ".ipynb")
        try:
            fd = os.open(out.with_suffix(".running.ipynb"), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                         default_mode())
        except FileExistsError:
            continue
        os.close(fd)
        if any(out.with_suffix(s).exists() for s in (".ipynb", ".failed.ipynb",
                                                     ".interrupted.ipynb")):
            os.unlink(out.with_suffix(".running.ipynb"))  # an earlier run finished here
            continue
        return out
    raise RuntimeError(f"could not find a free notebook name in {folder}")


def _finish(running: Path, out: Path, status: str, reason: str | None) -> Path | None:
    """Move an unfinished run's notebook to ``out`` with suffix ``.<status>.ipynb``; when
    ``reason`` is given (papermill did not record the failure itself), mark it failed:
    ``papermill.exception``, the stopped cell ``failed``, the cells after it ``pending``, a
    banner cell on top and ``metadata.slimlib.run`` = status and reason."""
    import nbformat

    target = out.with_suffix(f".{status}.ipynb")
    if not running.is_file() or not running.stat().st_size:  # the kernel never started
        running.unlink(missing_ok=True)
        return None
    if reason is not None:
        nb = nbformat.read(running, as_version=4)
        meta = nb.metadata.setdefault("papermill", {})
        meta["exception"] = True
        started = [i for i, c in enumerate(nb.cells)
                   if c.metadata.get("papermill", {}).get("start_time")]
        stopped = started[-1] if started else -1
        for i, cell in enumerate(nb.cells):
            info = cell.metadata.setdefault("papermill", {})
            if i == stopped:
                info["status"] = "failed"
                info["exception"] = True
            elif i > stopped:
                info.update(status="pending", start_time=None, end_time=None, duration=None)
        nb.metadata["slimlib"] = {"run": {"status": status, "reason": reason,
                                          "stopped_at_cell": stopped}}
        banner = nbformat.v4.new_markdown_cell(
            f'<span style="color:red; font-size:2em">This run did NOT finish: {reason}.</span>'
            f" Cell {stopped} was stopped and the cells after it never ran; do not use this "
            "notebook's results.")
        banner.metadata["tags"] = ["slimlib-unfinished-run"]
        nb.cells.insert(0, banner)
        text = nbformat.writes(nb)
        _io.atomic_write(target, text if text.endswith("\n") else text + "\n")
        running.unlink()
    else:
        os.replace(running, target)
    return target


def _kernel_manager(env: Mapping[str, str]) -> type:
    """A jupyter kernel manager class whose kernels start with exactly ``env`` as their
    environment (papermill passes ``kernel_manager_class`` on to nbclient)."""
    from jupyter_client.manager import AsyncKernelManager

    fixed = dict(env)

    class _Manager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**fixed, **kw.get("env", {})}
            await super().start_kernel(**kw)

    return _Manager
