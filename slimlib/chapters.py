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

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimlib import _io

__all__ = ["run_chapter", "list_chapters", "parse_value", "chapter_parameters", "setup_page",
           "pretrain_models", "sweep_for", "runs_on", "controls_for", "compute_table_cached",
           "time_forward"]

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
    import jupytext

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


def _hash(parameters: Mapping[str, Any]) -> str:
    text = json.dumps(parameters, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


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

    Parameters that are profile settings (``profile``, ``models``, ``seeds``, ...) are
    validated with :func:`slimlib.profiles.check_parameters` before a kernel starts.

    Raises:
        FileNotFoundError: no such chapter, or a data root that lacks the profile's datasets.
        ValueError: unknown parameter names, or a value of the wrong type or range.
        papermill.PapermillExecutionError: a cell raised; the notebook is written as
            ``….failed.ipynb`` (its path is the exception's ``notebook_path``).
        TimeoutError: a cell ran longer than ``timeout`` (``….failed.ipynb``).
        KeyboardInterrupt: interrupted (``….interrupted.ipynb``).
    """
    import papermill

    from slimlib.config import absolutize_env

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
    with _patched_env(env or {}):
        absolutize_env()
        from slimlib.profiles import check_parameters

        check_parameters(parameters)  # type and range errors now, not from inside the kernel
        out = _reserve(Path(out_dir) / path.stem, _hash(parameters))
        running = out.with_suffix(".running.ipynb")
        try:
            papermill.execute_notebook(
                nb, str(running), parameters=parameters, kernel_name=KERNEL, language="python",
                cwd=str(cwd or path.parent.resolve()), progress_bar=progress,
                execution_timeout=timeout, log_output=False,
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


@contextlib.contextmanager
def _patched_env(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set the environment variables ``overrides`` for the duration of the block; restore
    (or remove) each one afterwards, also when the block raises."""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------ helpers the chapters call


def setup_page(dpi: int = 90, figsize: tuple[float, float] = (6.4, 4.0)) -> None:
    """Display settings every chapter shares: inline figures (also under ``MPLBACKEND=Agg``),
    no tqdm-widget or library ``UserWarning`` noise, 4-digit pandas tables."""
    import warnings

    import matplotlib.pyplot as plt
    import pandas as pd

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without widgets
    warnings.filterwarnings("ignore", category=UserWarning)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book extras
        get_ipython = None  # noqa: N806
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
    pd.set_option("display.precision", 4)
    plt.rcParams.update({"figure.dpi": dpi, "figure.figsize": figsize})


def _profile_data_root(profile: Any) -> contextlib.AbstractContextManager[None]:
    """Expose a profile's explicit ``data_root`` as ``$SLIMLIB_DATA`` while a helper runs, so
    that the embedded models are pretrained (and their checkpoints looked up) on the same
    data root the chapter's datasets come from."""
    from slimlib.config import DATA_ENV

    root = getattr(profile, "data_root", None)
    return _patched_env({} if root is None else {DATA_ENV: str(root)})


def embedded_models_of(profile: Any) -> list[str]:
    """The embedded (slimlib-pretrained) models a profile's chapters use, in profile order."""
    from slimlib.train.embedded import EMBEDDED_SPECS

    names = [*profile.models, *profile.cv_models,
             *(name for pair in profile.slimmable_pairs for name in pair)]
    return [n for n in dict.fromkeys(names) if n in EMBEDDED_SPECS]


def pretrain_models(profile: Any, processes: int = 2):
    """Pretrain every embedded model ``profile`` needs whose checkpoint is not cached yet,
    ``processes`` at a time (:func:`slimlib.train.embedded.pretrain_missing`).

    Returns a table with one row per embedded model: its checkpoint, whether it was cached
    before this call, training steps and the wall time its training took. A profile with
    ``pretrained=False`` (``smoke``) trains nothing and returns an empty table.
    """
    import time

    import pandas as pd
    import torch

    from slimlib.train import embedded

    names = embedded_models_of(profile) if profile.pretrained else []
    with _profile_data_root(profile):
        cached = {n: embedded.checkpoint_path(n).exists() for n in names}
        start = time.perf_counter()
        paths = embedded.pretrain_missing(names, processes=processes)
        wall = time.perf_counter() - start
    rows = []
    for name in names:
        state = torch.load(paths[name], map_location="cpu", weights_only=False)
        rows.append({"model": name, "cached": cached[name], "steps": state["step"],
                     "train_s": round(float(state.get("wall_s", state["elapsed_s"])), 1),
                     "data": state["fingerprint"].split(":")[0]
                     + (" (synthetic)" if state.get("synthetic") else ""),
                     "checkpoint": paths[name].name})
    table = pd.DataFrame(rows, columns=["model", "cached", "steps", "train_s", "data",
                                        "checkpoint"])
    table.attrs["wall_s"] = wall
    return table


def _spec_of(model: Any):
    from slimlib import models as registry

    return registry.spec(model) if isinstance(model, str) else model.spec


def runs_on(spec: Any, dataset: Any) -> bool:
    """Whether a model with ``spec`` can be fed ``dataset`` (an ImageDataset) under slimlib's
    band rules (:func:`slimlib.data.preprocess.band_plan`: bands by name, no silent fill)."""
    from slimlib.data.preprocess import band_plan

    try:
        band_plan(dataset.bands, dataset.units, spec)
    except ValueError:
        return False
    return True


def runs_on_name(spec: Any, dataset: str) -> bool:
    """:func:`runs_on` from a dataset's registry metadata (no images are loaded)."""
    from slimlib import data
    from slimlib.data.preprocess import band_plan

    info = data.info(dataset)
    try:
        band_plan(info["bands"], info["units"], spec)
    except ValueError:
        return False
    return True


def _with_options(profile: Any, model: Any) -> Any:
    """Resolve one ``sweep_for`` model: a random-init control label
    (``"<name> [random init <seed>]"``, :func:`slimlib.controls.control_label`) becomes that
    network; a registry name the profile gives load options (``profile.model_options``)
    becomes the loaded module; anything else is returned as it is."""
    if not isinstance(model, str):
        return model
    from slimlib import controls
    from slimlib import models as registry

    base, seed = controls.split_label(model)
    options = profile.options_for(base)
    if seed is not None:
        return controls.random_init_models(base, (seed,), **options)[model]
    if not options:
        return model
    with _profile_data_root(profile):
        return registry.load(model, pretrained=profile.pretrained, **options)


def sweep_for(profile: Any, models: Any, datasets: Any = None, *, widths: Any = None,
              protocols: Any = None, seeds: Any = None, table: str = "sweep.csv",
              **kwargs: Any):
    """:func:`slimlib.sweep` with a profile's data subsets, seeds, batch size and device.

    ``models`` are registry names or a dict label -> module (e.g. random-init controls).
    ``datasets`` are registry names (default: the profile's RS datasets), loaded with the
    profile's per-class subsets (:func:`slimlib.profiles.load_datasets`). Each model runs on
    the datasets it can be fed (:func:`runs_on`: a 13-band model skips RGB-only data; an
    RGB model runs on 13-band data through its B04/B03/B02 rendering); a model that fits
    none of them raises. Rows land in ``results_path(table, profile)`` so every chapter of one
    profile shares (and resumes) one table.
    """
    import pandas as pd

    from slimlib.profiles import load_datasets, results_path
    from slimlib.sweeping import sweep

    data = load_datasets(profile, datasets)
    items = dict(models) if isinstance(models, Mapping) else {m: m for m in models}
    items = {label: _with_options(profile, m) for label, m in items.items()}
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for label, model in items.items():
        spec = _spec_of(model)  # a module's own spec, or the registry's
        fits = tuple(name for name, (train, _) in data.items() if runs_on(spec, train))
        if not fits:
            raise ValueError(f"model {label!r} (bands {list(spec.bands)}) fits none of the "
                             f"datasets {list(data)}; give datasets it can be fed")
        groups.setdefault(fits, {})[label] = model
    path = results_path(table, profile)
    kwargs.setdefault("train_fraction", getattr(profile, "train_fraction", 1.0))
    parts = []
    with _profile_data_root(profile):
        for fits, group in groups.items():
            arg = group if any(not isinstance(m, str) for m in group.values()) \
                else list(group.values())
            parts.append(sweep(
                arg, {name: data[name] for name in fits},
                widths=list(widths if widths is not None else profile.widths),
                seeds=list(seeds if seeds is not None else profile.seeds),
                protocols=tuple(protocols if protocols is not None else profile.protocols),
                out=path, batch_size=profile.batch_size,
                device=profile.device, progress=False, pretrained=profile.pretrained, **kwargs,
            ))
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    timings: dict[str, float] = {}
    for part in parts:
        for stage, seconds in part.attrs.get("timings", {}).items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    out.attrs["timings"] = timings
    out.attrs["path"] = str(path)
    return out


def controls_for(profile: Any, models: Any, datasets: Any = None, *, widths: Any = None,
                 protocols: Any = None, init_seeds: Any = None, table: str = "sweep.csv"):
    """Every model of ``models`` with both controls, through the same sweep machinery.

    Runs (or reads back) the pretrained sweep and the random-init controls
    (:func:`slimlib.controls.random_init_models`, ``profile.init_seeds``) at ``widths``
    (default ``profile.control_widths``), and the embedding-only floor
    (:func:`slimlib.controls.floor_scores`) on the same data subsets.

    Returns:
        ``(rows, floor, comparison)``: the sweep rows of models and controls, the floor
        scores, and :func:`slimlib.controls.compare` of the two.
    """
    import pandas as pd

    from slimlib import controls
    from slimlib import models as registry
    from slimlib.profiles import load_datasets

    widths = list(widths if widths is not None else profile.control_widths)
    protocols = tuple(protocols if protocols is not None else profile.protocols)
    init_seeds = tuple(init_seeds if init_seeds is not None else profile.init_seeds)
    data = load_datasets(profile, datasets)
    rows, floors = [], []
    for name in models:
        rows.append(sweep_for(profile, [name], datasets, widths=widths, protocols=protocols,
                              table=table))
        options = profile.options_for(name)
        rows.append(sweep_for(profile, controls.random_init_models(name, init_seeds, **options),
                              datasets, widths=widths, protocols=protocols, table=table))
        with _profile_data_root(profile):
            encoder = registry.load(name, pretrained=profile.pretrained, **options)
        fits = {k: v for k, v in data.items() if runs_on(encoder.spec, v[0])}
        floors.append(controls.floor_scores(
            encoder, fits, name=name, protocols=protocols, seeds=profile.seeds,
            batch_size=profile.batch_size, device=profile.device,
            train_fraction=profile.train_fraction))
    rows = pd.concat(rows, ignore_index=True)
    floor = pd.concat(floors, ignore_index=True)
    return rows, floor, controls.compare(rows, floor)


@functools.lru_cache(maxsize=2)
def _random_init(model_name: str, options: tuple = ()):
    """``models.load(name, pretrained=False, **options)``, memoised: building a ViT-B takes
    seconds and FLOPs do not depend on the weights (``compute_table`` slims copies, never the
    model)."""
    from slimlib import models

    return models.load(model_name, pretrained=False, **dict(options)).eval()


def compute_table_cached(model_name: str, widths: Any, *, parts: tuple[str, ...] = ("attn", "ffn"),
                         count_attention: bool = True, count_norms: bool = False,
                         profile: Any = None):
    """FLOPs/params per width of ``models.load(model_name, pretrained=False)`` at its native
    input (batch 1), cached as CSV under ``results/<profile>/compute/`` (atomic write).
    The profile's load options for the model (``profile.model_options``) apply.

    ``count_attention=False, count_norms=True`` is the paper's (fvcore) convention."""
    import pandas as pd
    import torch

    from slimlib.compute import compute_table
    from slimlib.profiles import results_path

    widths = [float(w) for w in widths]
    options = tuple(sorted(profile.options_for(model_name).items())) \
        if profile is not None and hasattr(profile, "options_for") else ()
    key = _hash({"model": model_name, "widths": widths, "parts": list(parts),
                 "count_attention": count_attention,
                 **({"count_norms": True} if count_norms else {}),
                 **({"options": [list(o) for o in options]} if options else {})})
    path = results_path(f"compute/{model_name}-{key}.csv", profile)
    if path.is_file():
        return pd.read_csv(path)
    model = _random_init(model_name, options)
    spec = model.spec
    x = torch.randn(1, len(spec.bands), spec.input_size, spec.input_size,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        table = compute_table(model, widths, x, parts=parts, count_attention=count_attention,
                              count_norms=count_norms)
    table.insert(0, "model", model_name)
    table["count_attention"] = count_attention
    table["count_norms"] = count_norms
    table["parts"] = "+".join(parts)
    with _io.atomic_path(path) as tmp:  # a unique temporary: two kernels may race here
        table.to_csv(tmp, index=False)
    return table


def time_forward(model: Any, x: Any, *, repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall time of ``model(x)`` under ``torch.inference_mode`` (``x``: ``(B, C, H, W)``).

    Returns ``{"ms": median ms per batch, "min_ms": fastest, "images_per_s": B / median}``.
    """
    import time

    import numpy as np
    import torch

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    med = float(np.median(times))
    return {"ms": 1e3 * med, "min_ms": 1e3 * min(times), "images_per_s": x.shape[0] / med}
