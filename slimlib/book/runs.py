"""What the chapters run: pretraining the embedded models, sweeps and random-init controls
for a profile, and which model can be fed which dataset.

These helpers take a :class:`slimlib.book.profiles.Profile` and call the library
(:func:`slimlib.sweep`, :mod:`slimlib.sweeping.controls`, :mod:`slimlib.train.embedded`) with its
settings (``profile.settings``, passed down explicitly: :func:`slimlib.book.profiles.settings_of`);
results land under ``<settings.results>/<profile>/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["embedded_models_of", "pretrain_models", "runs_on", "runs_on_name", "sweep_for",
           "controls_for", "shared_controls_for", "n_test_images", "n_test_sentence"]


def _settings(profile: Any):
    from slimlib.book.profiles import settings_of

    return settings_of(profile)


def load_options(profile: Any, name: str, options: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The one place ``models.load`` options for ``name`` under ``profile`` are built:
    ``options`` (default: the profile's, ``profile.options_for(name)``), the profile's
    settings (so an embedded, slimlib-pretrained model is pretrained and its checkpoint looked
    up on the data root the chapter's datasets come from, in the profile's cache) and, for an
    embedded model, the profile's explicit ``data_root``."""
    from slimlib.constants import EMBEDDED_MODEL_NAMES

    if options is None:
        options = profile.options_for(name)
    out = {**options, "settings": _settings(profile)}
    root = getattr(profile, "data_root", None)
    if root is not None and name in EMBEDDED_MODEL_NAMES:
        out["data_root"] = root
    return out


def _load(profile: Any, name: str, options: Mapping[str, Any]) -> Any:
    """``models.load(name)`` under ``profile``. A random-weights profile (``pretrained=False``,
    e.g. ``smoke``) draws the network from torch's RNG seeded with ``zlib.crc32(name)`` (the
    global RNG is left as it was), so every process, a rerun or a shard job, builds the same
    weights and a killed sweep resumes to an identical table; the embedded models seed their
    own init."""
    import zlib

    import torch

    from slimlib import models as registry

    with torch.random.fork_rng(devices=[]):
        if not profile.pretrained:
            torch.manual_seed(zlib.crc32(name.encode()))
        return registry.load(name, pretrained=profile.pretrained,
                             **load_options(profile, name, options))


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
    settings = _settings(profile)
    cached = {n: embedded.checkpoint_path(n, settings=settings).exists() for n in names}
    start = time.perf_counter()
    paths = embedded.pretrain_missing(names, processes=processes, settings=settings)
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
    """A registry name's spec, or a module's own (:func:`slimlib.specs.spec_of`)."""
    from slimlib import models as registry
    from slimlib.specs import spec_of

    return registry.spec(model) if isinstance(model, str) else spec_of(model, required=True)


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
    (``"<name> [random init <seed>]"``, :func:`slimlib.sweeping.controls.control_label`) becomes that
    network; a registry name the profile gives load options (``profile.model_options``)
    becomes the loaded module; anything else is returned as it is."""
    if not isinstance(model, str):
        return model
    from slimlib import models as registry
    from slimlib.sweeping import controls

    base, seed = controls.split_label(model)
    options = profile.options_for(base)
    if seed is not None:
        return controls.random_init_models(base, (seed,), settings=_settings(profile),
                                           **options)[model]
    if not options and (profile.pretrained or registry.spec(base).family == "embedded"):
        return model
    return _load(profile, model, options)


def sweep_for(profile: Any, models: Any, datasets: Any = None, *, widths: Any = None,
              protocols: Any = None, seeds: Any = None, table: str = "sweep.csv",
              **kwargs: Any):
    """:func:`slimlib.sweep` with a profile's data subsets, seeds, batch size and device.

    ``models`` are registry names or a dict label -> module (e.g. random-init controls).
    ``datasets`` are registry names (default: the profile's RS datasets), loaded with the
    profile's per-class subsets (:func:`slimlib.book.profiles.load_datasets`). Each model runs on
    the datasets it can be fed (:func:`runs_on`: a 13-band model skips RGB-only data; an
    RGB model runs on 13-band data through its B04/B03/B02 rendering); a model that fits
    none of them raises. Rows land in ``results_path(table, profile)`` so every chapter of one
    profile shares (and resumes) one table.
    """
    import pandas as pd

    from slimlib.book.profiles import load_datasets, results_path
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
    settings = _settings(profile)
    path = results_path(table, profile, settings=settings)
    kwargs.setdefault("train_fraction", getattr(profile, "train_fraction", 1.0))
    kwargs.setdefault("settings", settings)  # data root (embedded models pretrain on it), cache
    if getattr(profile, "data_root", None) is not None:
        kwargs.setdefault("data_root", profile.data_root)
    parts = []
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


def _floor_of(profile: Any, name: str, data: Mapping[str, Any], protocols: tuple[str, ...]):
    """The embedding-only floor of ``name`` on every dataset of ``data`` it can be fed."""
    from slimlib.sweeping import controls

    encoder = _load(profile, name, profile.options_for(name))
    fits = {k: v for k, v in data.items() if runs_on(encoder.spec, v[0])}
    return controls.floor_scores(
        encoder, fits, name=name, protocols=protocols, seeds=profile.seeds,
        batch_size=profile.batch_size, device=profile.device,
        train_fraction=profile.train_fraction, settings=_settings(profile))


def controls_for(profile: Any, models: Any, datasets: Any = None, *, widths: Any = None,
                 protocols: Any = None, init_seeds: Any = None, table: str = "sweep.csv"):
    """Every model of ``models`` with both controls, through the same sweep machinery.

    Runs (or reads back) the pretrained sweep and the random-init controls
    (:func:`slimlib.sweeping.controls.random_init_models`, ``profile.init_seeds``) at ``widths``
    (default ``profile.control_widths``), and the embedding-only floor
    (:func:`slimlib.sweeping.controls.floor_scores`) on the same data subsets.

    Returns:
        ``(rows, floor, comparison)``: the sweep rows of models and controls, the floor
        scores, and :func:`slimlib.sweeping.controls.compare` of the two.
    """
    import pandas as pd

    from slimlib.book.profiles import load_datasets
    from slimlib.sweeping import controls

    widths = list(widths if widths is not None else profile.control_widths)
    protocols = tuple(protocols if protocols is not None else profile.protocols)
    init_seeds = tuple(init_seeds if init_seeds is not None else profile.init_seeds)
    data = load_datasets(profile, datasets)
    rows, floors = [], []
    for name in models:
        rows.append(sweep_for(profile, [name], datasets, widths=widths, protocols=protocols,
                              table=table))
        rows.append(sweep_for(profile, controls.random_init_models(
            name, init_seeds, settings=_settings(profile), **profile.options_for(name)),
            datasets, widths=widths, protocols=protocols, table=table))
        floors.append(_floor_of(profile, name, data, protocols))
    rows = pd.concat(rows, ignore_index=True)
    floor = pd.concat(floors, ignore_index=True)
    return rows, floor, controls.compare(rows, floor)


def shared_controls_for(profile: Any, models: Any, datasets: Any = None, *, widths: Any = None,
                        protocols: Any = None, init_seeds: Any = None,
                        table: str = "sweep.csv"):
    """:func:`controls_for` of models that share one architecture and so one random-init
    network per init seed (e.g. slimlib's regular and slimmable tiny MoCo/MAE): the
    random-init sweep runs once, for the first model, and its rows stand for every model;
    each model still gets its own pretrained rows and embedding-only floor.

    Raises:
        ValueError: a model's random-init network differs from the first model's (then the
            controls are not shared; use :func:`controls_for`).
    """
    import pandas as pd
    import torch

    from slimlib.book.profiles import load_datasets
    from slimlib.sweeping import controls

    models = list(models)
    if not models:
        raise ValueError("shared_controls_for needs at least one model")
    widths = list(widths if widths is not None else profile.control_widths)
    protocols = tuple(protocols if protocols is not None else profile.protocols)
    init_seeds = tuple(init_seeds if init_seeds is not None else profile.init_seeds)
    first = models[0]

    def random_init(name: str, seeds: tuple[int, ...]) -> dict[str, Any]:
        return controls.random_init_models(name, seeds, settings=_settings(profile),
                                           **profile.options_for(name))

    nets = random_init(first, init_seeds)
    ref = next(iter(nets.values())).state_dict()
    for name in models[1:]:
        other = next(iter(random_init(name, init_seeds[:1]).values())).state_dict()
        if other.keys() != ref.keys() or not all(
                other[k].shape == ref[k].shape and torch.equal(other[k], ref[k]) for k in ref):
            raise ValueError(f"{name!r} and {first!r} have different random-init networks "
                             "(architecture or init); they cannot share controls: use "
                             "controls_for")
    shared = sweep_for(profile, nets, datasets, widths=widths, protocols=protocols,
                       table=table)
    seeds = [controls.split_label(m)[1] for m in shared["model"]]
    data = load_datasets(profile, datasets)
    parts, floors = [], []
    for name in models:
        parts.append(sweep_for(profile, [name], datasets, widths=widths, protocols=protocols,
                               table=table))
        parts.append(shared.assign(model=[controls.control_label(name, s) for s in seeds]))
        floors.append(_floor_of(profile, name, data, protocols))
    rows = pd.concat(parts, ignore_index=True)
    floor = pd.concat(floors, ignore_index=True)
    return rows, floor, controls.compare(rows, floor)


def n_test_images(rows: Any):
    """How many test images each dataset's numbers rest on, from sweep rows.

    Returns one row per dataset (probe rows only): ``n_test`` (test images per score; several
    values joined by "/" when the rows differ), ``n_train`` (the probe's training bank: per
    fold when cross-fitted), ``evaluation`` (``"fixed split"`` or ``"cross-fitted, k
    folds"``, read from the rows' ``notes``, :mod:`slimlib.probes`) and ``classes`` (classes
    among the test labels, from the ``outcomes`` cell; 0 when no row has outcomes).
    """
    import re

    import pandas as pd

    from slimlib.probes import NOTE
    from slimlib.sweeping.outcomes import decode

    probe = rows[rows["protocol"] != "features"]
    out = []
    for dataset, grp in probe.groupby("dataset", sort=False):
        folds = {int(m.group(1)) for n in grp["notes"].astype(str)
                 for m in [re.search(rf"{NOTE}: (\d+) ", n)] if m}
        cells = [c for c in grp.get("outcomes", pd.Series(dtype=object)) if decode(c) is not None]
        out.append({
            "dataset": dataset,
            "n_test": "/".join(f"{v:,}" for v in sorted(set(grp["n_test"].astype(int)))),
            "n_train": "/".join(f"{v:,}" for v in sorted(set(grp["n_train"].astype(int)))),
            "evaluation": (f"cross-fitted, {'/'.join(map(str, sorted(folds)))} folds" if folds
                           else "fixed split"),
            "classes": int(pd.unique(decode(cells[0]).labels).size) if cells else 0,
        })
    return pd.DataFrame(out, columns=["dataset", "n_test", "n_train", "evaluation", "classes"])


def n_test_sentence(rows: Any) -> str:
    """One sentence for a chapter: the test images each dataset's scores rest on."""
    table = n_test_images(rows)
    if table.empty:
        return "No probe rows: no test images to report."
    parts = []
    for r in table.itertuples():
        bank = " per fold" if r.evaluation.startswith("cross") else ""
        parts.append(f"{r.dataset}: {r.n_test} test images ({r.evaluation}; training bank "
                     f"{r.n_train}{bank})")
    return "Each score rests on " + "; ".join(parts) + "."
