"""The book's sweep plan: every sweep chapters 1-9 and the claims ask for, in one table.

:data:`REQUESTS` is the table: one :class:`Request` per purpose (``main``, ``slimmable``,
``cv_rs``, ``cv_own``, ``controls``, and chapter 7's ``orders``, ``parts`` and ``probes``,
which run on its one (model, dataset), :func:`ablation_model`), saying which models x datasets
x ``sweep_for`` settings it runs (read off the profile) and which chapters read the rows
(``readers``). Three readers use it:

* :func:`plan` turns it into :class:`slimlib.scale.Shard` s (one per model x dataset,
  optionally per width chunk), the unit :mod:`slimlib.scale` submits to SLURM or runs as local
  processes;
* :func:`run` runs one entry through :func:`slimlib.book.sweep_for` (:func:`run_controls`: the
  ``controls`` entry through :func:`slimlib.book.controls_for`) and returns its rows:
  :func:`slimlib.book.claims.gather` and chapter 7 take their sweeps from it;
* chapters 3-6, 8 and 9 make the calls of ``main`` (``book.sweep_for(cfg, cfg.models)``),
  ``slimmable`` (``book.sweep_for(cfg, names)``), ``cv_rs`` (``book.sweep_for(cfg,
  cfg.cv_models)``), ``cv_own`` (``book.sweep_for(cfg, cfg.cv_models, cfg.cv_datasets)``) and
  ``controls`` (``book.controls_for(cfg, cfg.models)``) themselves: each is exactly that
  entry's call (chapter 8, and chapter 7 for its controls, ask for one model, or one model x
  dataset, of it), so a planned sweep leaves them nothing to compute.

Not in the plan (computed when their chapter runs): chapter 4's random-init controls of the
CV models, chapter 5's shared random-init control of the slimmable miniatures
(:func:`slimlib.book.shared_controls_for`), chapter 10's robustness sweeps, and the
embedding-only floors of :func:`slimlib.book.controls_for` (not sweeps).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

if TYPE_CHECKING:
    from slimlib.scale import Shard, SweepCall

__all__ = ["Request", "REQUESTS", "ablation_model", "run", "run_controls", "plan",
           "check_names", "AUTO"]


@dataclass(frozen=True)
class Request:
    """One entry of the book's sweep plan: the sweeps one purpose asks of ``sweep_for``.

    Every field but ``name``, ``readers`` and ``ablation`` is a function of the profile, so the
    table holds no settings of its own.

    Attributes:
        name: the purpose (``"main"``, ``"controls"``, ``"orders"``, ...): what :func:`run`
            takes.
        readers: the chapters (and claims) that read the rows.
        models: the models (registry names); unused when ``ablation``.
        datasets: the datasets (registry names); ``None``: the profile's RS datasets
            (``sweep_for``'s default).
        calls: one ``sweep_for`` call each, as its keyword settings: fields of
            :class:`slimlib.scale.SweepCall` (``{}``: the profile's widths, seeds and
            protocols). Plain keywords, so running an entry needs no :mod:`slimlib.scale`
            (the ``[scale]`` extra); :func:`plan` makes ``SweepCall`` s of them.
        init_seeds: for an entry with random-init controls, their init seeds (one control
            beside each model, :func:`slimlib.book.controls_for`); ``None``: no controls.
        ablation: the entry runs on chapter 7's one (model, dataset), :func:`ablation_model`,
            instead of ``models`` x ``datasets``.
    """

    name: str
    readers: str
    models: Callable[[Any], Sequence[str]] = lambda profile: ()
    datasets: Callable[[Any], Sequence[str] | None] = lambda profile: None
    calls: Callable[[Any], Sequence[dict[str, Any]]] = lambda profile: ({},)
    init_seeds: Callable[[Any], Sequence[int]] | None = None
    ablation: bool = False


#: Chapter 7's dimension orders and slimmed layer types.
ORDERS = ("first", "last", "random")
LAYER_TYPES = (("attn",), ("ffn",), ("attn", "ffn"))


def _ablation_widths(profile: Any) -> tuple[float, ...]:
    """Chapter 7's widths: the profile's ablation widths and 1 (the retention reference)."""
    return tuple(sorted(set(profile.ablation_widths) | {1.0}))


def _ablation_call(profile: Any, **settings: Any) -> dict[str, Any]:
    """A chapter-7 call: ablation widths, k-NN, no feature metrics, unless ``settings`` say
    otherwise."""
    return {"widths": _ablation_widths(profile), "protocols": ("knn",), "metrics": False,
            **settings}


def _slimmable_models(profile: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for pair in profile.slimmable_pairs for m in pair))


#: The book's sweeps, in plan order.
REQUESTS: tuple[Request, ...] = (
    Request("main", "chapters 3, 4, 6, 8 (its first model), 9; claims.gather (rs, features)",
            models=lambda p: tuple(p.models)),
    Request("slimmable", "chapter 5; claims.gather (slimmable)", models=_slimmable_models),
    Request("cv_rs", "chapter 4 (CV models on the RS data); claims.gather (cv_rs)",
            models=lambda p: tuple(p.cv_models)),
    Request("cv_own", "chapter 4 (CV models on natural images); claims.gather (cv_own)",
            models=lambda p: tuple(p.cv_models), datasets=lambda p: tuple(p.cv_datasets)),
    Request("controls", "chapters 3, 4, 6, 7 (its pair), 8 (its first model); "
            "claims.gather (controls, control_rows, floor)",
            models=lambda p: tuple(p.models),
            calls=lambda p: ({"widths": tuple(p.control_widths)},),
            init_seeds=lambda p: tuple(p.init_seeds)),
    Request("orders", "chapter 7 (dimension order); claims.gather (orders)", ablation=True,
            calls=lambda p: tuple(_ablation_call(p, order=o) for o in ORDERS)),
    Request("parts", "chapter 7 (layer type)", ablation=True,
            calls=lambda p: tuple(_ablation_call(p, parts=parts) for parts in LAYER_TYPES)),
    Request("probes", "chapter 7 (k-NN vs linear probe)", ablation=True,
            calls=lambda p: (_ablation_call(p, protocols=("knn", "linear")),)),
)


class _Entry(NamedTuple):
    """A :class:`Request` read off one profile."""

    models: tuple[str, ...]
    datasets: tuple[str, ...] | None
    calls: tuple[dict[str, Any], ...]
    init_seeds: tuple[int, ...]


def _request(name: str) -> Request:
    for request in REQUESTS:
        if request.name == name:
            return request
    raise ValueError(f"no entry {name!r} in the book's sweep plan; entries: "
                     f"{[r.name for r in REQUESTS]}")


def _entry(request: Request, profile: Any, pair: tuple[str, str] | None) -> _Entry:
    if request.ablation:
        if pair is None:
            raise ValueError(f"entry {request.name!r} runs on chapter 7's (model, dataset): "
                             "give the pair")
        models, datasets = (pair[0],), (pair[1],)
    else:
        models, datasets = tuple(request.models(profile)), request.datasets(profile)
    seeds = () if request.init_seeds is None else tuple(request.init_seeds(profile))
    return _Entry(models, None if datasets is None else tuple(datasets),
                  tuple(request.calls(profile)), seeds)


def ablation_model(profile: Any) -> tuple[str, str]:
    """The (model, dataset) of the ablation entries (chapter 7): of the profile's RS models
    and the datasets each can be fed, the pair with the most test images (the tightest
    intervals; earlier models and datasets win ties). Loads the profile's datasets."""
    from slimlib import models as registry
    from slimlib.book.profiles import load_datasets
    from slimlib.book.runs import runs_on

    data = list(load_datasets(profile).values())
    best: tuple[int, str, str] | None = None
    for model in profile.models:
        spec = registry.spec(model)
        for train, test in data:
            if runs_on(spec, train) and (best is None or len(test) > best[0]):
                best = (len(test), model, train.name)
    if best is None:
        raise ValueError(f"none of {profile.models} fits the datasets {profile.datasets}")
    return best[1], best[2]


def run(profile: Any, name: str) -> pd.DataFrame:
    """The rows of the plan's entry ``name`` for ``profile``: its ``sweep_for`` calls, run (or
    read back from the profile's results table), in the table's order.

    An ablation entry runs on :func:`ablation_model`'s pair; the ``controls`` entry returns
    the first table of :func:`run_controls` (models and controls). ``attrs["timings"]`` sums
    the calls' stage timings (``{}`` where nothing was computed) and ``attrs["path"]`` is the
    results table.

    Raises:
        ValueError: ``name`` is not an entry (the entries are named).
    """
    from slimlib.book.runs import sweep_for

    request = _request(name)
    if request.init_seeds is not None:
        return run_controls(profile, name)[0]
    entry = _entry(request, profile, ablation_model(profile) if request.ablation else None)
    datasets = None if entry.datasets is None else list(entry.datasets)
    tables = [sweep_for(profile, list(entry.models), datasets, **call) for call in entry.calls]
    if len(tables) == 1:
        return tables[0]
    out = pd.concat(tables, ignore_index=True)
    timings: dict[str, float] = {}
    for table in tables:
        for stage, seconds in table.attrs.get("timings", {}).items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    out.attrs["timings"] = timings
    out.attrs["path"] = tables[0].attrs["path"]
    return out


def run_controls(profile: Any, name: str = "controls"
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The plan's entry ``name`` with its random-init controls, through
    :func:`slimlib.book.controls_for`: ``(rows, floor, comparison)``.

    Raises:
        ValueError: ``name`` is not an entry with random-init controls.
    """
    from slimlib.book.runs import controls_for

    request = _request(name)
    if request.init_seeds is None:
        raise ValueError(f"entry {name!r} has no random-init controls; entries with them: "
                         f"{[r.name for r in REQUESTS if r.init_seeds is not None]}")
    entry = _entry(request, profile, ablation_model(profile) if request.ablation else None)
    (call,) = entry.calls  # controls_for takes one call's widths and protocols
    return controls_for(profile, list(entry.models),
                        None if entry.datasets is None else list(entry.datasets),
                        init_seeds=entry.init_seeds, **call)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _fits(model: str, dataset: str) -> bool:
    """Whether ``model`` (a registry name or a random-init control label) can be fed
    ``dataset``, from registry metadata alone (no weights, no images)."""
    from slimlib import models as registry
    from slimlib.book.runs import runs_on_name
    from slimlib.sweeping.controls import split_label

    return runs_on_name(registry.spec(split_label(model)[0]), dataset)


def _book_requests(profile: Any, ablation: tuple[str, str] | None
                   ) -> list[tuple[str, str, SweepCall]]:
    """Every ``(model, dataset, call)`` of :data:`REQUESTS`, in table order, for the (model,
    dataset) pairs the model can be fed; an entry with controls puts each control label
    after its model. ``ablation``: chapter 7's (model, dataset); ``None`` leaves the ablation
    entries out."""
    from slimlib.scale import SweepCall
    from slimlib.sweeping.controls import control_label

    out = []
    for request in REQUESTS:
        if request.ablation and ablation is None:
            continue
        entry = _entry(request, profile, ablation)
        datasets = entry.datasets if entry.datasets is not None else profile.datasets
        calls = [SweepCall(**call) for call in entry.calls]
        for model in entry.models:
            labels = (model, *(control_label(model, s) for s in entry.init_seeds))
            out += [(label, dataset, call) for dataset in datasets if _fits(model, dataset)
                    for label in labels for call in calls]
    return out


def _chunks(call: SweepCall, profile: Any, size: int | None) -> list[SweepCall]:
    from slimlib.scale import SweepCall

    widths = tuple(call.widths if call.widths is not None else profile.widths)
    if size is None or len(widths) <= size:
        return [call]
    # CKA's width-1 reference is computed (and cached) by whichever chunk needs it, so the
    # chunks stay independent of each other
    return [SweepCall(widths=widths[i:i + size], seeds=call.seeds, protocols=call.protocols,
                      order=call.order, parts=call.parts, metrics=call.metrics)
            for i in range(0, len(widths), size)]


#: ``plan(..., ablation=AUTO)``: chapter 7's pair from :func:`ablation_model`.
AUTO = "auto"


def check_names(*, models: Sequence[str] = (), datasets: Sequence[str] = ()) -> None:
    """Raise ``ValueError`` (naming close matches) for a model or dataset name the registries
    do not know; a random-init control label is checked by its model's name."""
    from slimlib import data
    from slimlib import models as registry
    from slimlib.sweeping.controls import split_label

    for name in models:
        registry.spec(split_label(name)[0])
    for name in datasets:
        data.info(name)


def plan(profile: Any, *, models: Sequence[str] | None = None,
         datasets: Sequence[str] | None = None, book: bool = True,
         max_widths: int | None = None,
         ablation: tuple[str, str] | str | None = AUTO) -> list[Shard]:
    """The shards of a profile's sweep: one per model x dataset (x width chunk).

    Args:
        profile: a resolved :class:`slimlib.book.profiles.Profile` (its ``datasets`` must be set,
            as :func:`slimlib.book.profiles.resolve` does).
        models, datasets: keep only these registry names (``None``: all). A name the book
            does not use gets the main-curve settings.
        book: ``True``: every entry of :data:`REQUESTS` (the rows the chapters and claims
            ask for); ``False``: only the main curves of ``models`` x ``datasets`` (default:
            the profile's RS models and datasets).
        max_widths: split a call with more widths into chunks of at most this many (one
            shard each), for models too slow for one job's time limit.
        ablation: (``book`` only) chapter 7's (model, dataset); :data:`AUTO` picks it with
            :func:`ablation_model`, which loads the profile's datasets (their
            test sizes decide); ``None`` leaves the ablation calls out (a plan printed
            without the data).

    Every model and dataset name is checked against the registries, and only (model,
    dataset) pairs the model can be fed (:func:`slimlib.book.runs_on_name`, registry
    metadata only) become shards, so every shard can run.

    Returns:
        Shards in a stable order with unique ids ``<model>__<dataset>[__<k>]``.

    Raises:
        ValueError: an unknown model or dataset name (close matches named), a model of
            ``models`` that fits none of the datasets, or a selection of nothing.
    """
    if profile.datasets is None:
        raise ValueError("profile.datasets is None: pass slimlib.book.profiles.resolve(profile)")
    if max_widths is not None and (isinstance(max_widths, bool) or not isinstance(
            max_widths, int) or max_widths < 1):
        raise ValueError(f"max_widths must be a positive int or None; got {max_widths!r}")
    for name, value in (("models", models), ("datasets", datasets)):
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list of names, not the string {value!r}")
    from slimlib.scale import Shard, SweepCall
    from slimlib.sweeping.controls import split_label

    check_names(models=models or (), datasets=datasets or ())
    if book:
        if isinstance(ablation, str):
            if ablation != AUTO:
                raise ValueError(f"ablation must be {AUTO!r}, None or a (model, dataset) pair; "
                                 f"got {ablation!r}")
            ablation = ablation_model(profile)
        requests = _book_requests(profile, None if ablation is None else tuple(ablation))
    else:
        requests = [(m, d, SweepCall()) for m in (models or profile.models)
                    for d in (datasets or profile.datasets)]
    if models is not None:
        requests = [r for r in requests if split_label(r[0])[0] in models]
        requests += [(m, d, SweepCall()) for m in models if m not in {r[0] for r in requests}
                     for d in (datasets or profile.datasets)]
    if datasets is not None:
        requests = [r for r in requests if r[1] in datasets]
    requests = [r for r in requests if _fits(r[0], r[1])]
    for model in models or ():
        if not any(split_label(r[0])[0] == model for r in requests):
            candidates = list(datasets or profile.datasets)
            if not any(_fits(model, d) for d in candidates):
                from slimlib import models as registry

                bands = list(registry.spec(split_label(model)[0]).bands)
                raise ValueError(f"model {model!r} (bands {bands}) fits none of the datasets "
                                 f"{candidates}; give datasets it can be fed")
    grouped: dict[tuple[str, str], list[SweepCall]] = {}
    for model, dataset, call in requests:
        calls = grouped.setdefault((model, dataset), [])
        if call not in calls:
            calls.append(call)
    if not grouped:
        raise ValueError(f"no shards: models={models} and datasets={datasets} select nothing "
                         f"of profile {profile.name!r} (models {list(profile.models)}, "
                         f"datasets {list(profile.datasets)})")
    shards = []
    for (model, dataset), calls in grouped.items():
        base = f"{_slug(model)}__{_slug(dataset)}"
        pieces = [c for call in calls for c in _chunks(call, profile, max_widths)]
        if max_widths is None or len(pieces) == 1:
            shards.append(Shard(base, model, dataset, tuple(pieces)))
        else:
            shards += [Shard(f"{base}__{k}", model, dataset, (piece,))
                       for k, piece in enumerate(pieces)]
    return shards


