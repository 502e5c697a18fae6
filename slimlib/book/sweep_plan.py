"""The book's sweep plan: every sweep a chapter asks for, as :class:`slimlib.scale.Shard` s.

:func:`plan` turns a profile into shards (one per model x dataset, optionally per width chunk),
the unit :mod:`slimlib.scale` submits to SLURM or runs as local processes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slimlib.scale import Shard, SweepCall

__all__ = ["plan", "check_names", "AUTO"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _fits(model: str, dataset: str) -> bool:
    """Whether ``model`` (a registry name or a random-init control label) can be fed
    ``dataset``, from registry metadata alone (no weights, no images)."""
    from slimlib import models as registry
    from slimlib.book import runs_on_name
    from slimlib.sweeping.controls import split_label

    return runs_on_name(registry.spec(split_label(model)[0]), dataset)


def _book_requests(profile: Any, ablation: tuple[str, str] | None
                   ) -> list[tuple[str, str, SweepCall]]:
    """Every ``(model, dataset, call)`` the chapters request of ``sweep_for`` (chapters 1-9),
    in chapter order, for the (model, dataset) pairs the model can be fed. Keep in step with
    :func:`slimlib.book.claims.gather` and the notebooks' ``sweep_for`` / ``controls_for`` calls.
    ``ablation``: chapter 7's (model, dataset); ``None`` leaves its calls out."""
    from slimlib.sweeping.controls import control_label

    def fits(model: str, datasets: Sequence[str]) -> list[str]:
        return [d for d in datasets if _fits(model, d)]

    main = SweepCall()
    rs_models = [*profile.models, *(m for pair in profile.slimmable_pairs for m in pair),
                 *profile.cv_models]
    out = [(m, d, main) for m in dict.fromkeys(rs_models) for d in fits(m, profile.datasets)]
    out += [(m, d, main) for m in profile.cv_models for d in fits(m, profile.cv_datasets)]
    # random-init controls of the RS models (chapters.controls_for) at the control widths
    cw = SweepCall(widths=tuple(profile.control_widths))
    for m in profile.models:
        for d in fits(m, profile.datasets):
            out.append((m, d, cw))
            out += [(control_label(m, s), d, cw) for s in profile.init_seeds]
    if ablation is None:
        return out
    # chapter 7 (ablations): the model x dataset with the largest test split
    aw = tuple(sorted(set(profile.ablation_widths) | {1.0}))
    model, dataset = ablation
    out += [(model, dataset, SweepCall(widths=aw, protocols=("knn",), order=o, metrics=False))
            for o in ("first", "last", "random")]
    out += [(model, dataset, SweepCall(widths=aw, protocols=("knn",), parts=p, metrics=False))
            for p in (("attn",), ("ffn",), ("attn", "ffn"))]
    out.append((model, dataset, SweepCall(widths=aw, protocols=("knn", "linear"),
                                          metrics=False)))
    return out


def _chunks(call: SweepCall, profile: Any, size: int | None) -> list[SweepCall]:
    widths = tuple(call.widths if call.widths is not None else profile.widths)
    if size is None or len(widths) <= size:
        return [call]
    # CKA's width-1 reference is computed (and cached) by whichever chunk needs it, so the
    # chunks stay independent of each other
    return [SweepCall(widths=widths[i:i + size], seeds=call.seeds, protocols=call.protocols,
                      order=call.order, parts=call.parts, metrics=call.metrics)
            for i in range(0, len(widths), size)]


#: ``plan(..., ablation=AUTO)``: chapter 7's pair from :func:`slimlib.book.claims.ablation_model`.
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
        book: ``True``: every row the chapters ask for (main curves of the RS, slimmable and CV
            models, CV models on natural images, the chapter-7 ablations); ``False``: only the
            main curves of ``models`` x ``datasets`` (default: the profile's RS models and
            datasets).
        max_widths: split a call with more widths into chunks of at most this many (one
            shard each), for models too slow for one job's time limit.
        ablation: (``book`` only) chapter 7's (model, dataset); :data:`AUTO` picks it with
            :func:`slimlib.book.claims.ablation_model`, which loads the profile's datasets (their
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
    from slimlib.sweeping.controls import split_label

    check_names(models=models or (), datasets=datasets or ())
    if book:
        if isinstance(ablation, str):
            if ablation != AUTO:
                raise ValueError(f"ablation must be {AUTO!r}, None or a (model, dataset) pair; "
                                 f"got {ablation!r}")
            from slimlib.book.claims import ablation_model

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


