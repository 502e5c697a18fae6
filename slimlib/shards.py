"""Split a profile's sweep into independent shards and merge their tables into one.

A :class:`Shard` is one model on one dataset (optionally one chunk of the widths): the list of
:func:`slimlib.chapters.sweep_for` calls the book's chapters make for that pair, written to
the shard's own table ``results/<profile>/shards/<id>.csv``. Shards share the feature cache
and resume row by row like any sweep. :func:`merge` builds the table the book reads
(``results/<profile>/sweep.csv``) from the shard tables, collapsing identical duplicate rows
and refusing duplicates whose values disagree. :mod:`slimlib.cluster` submits shards as jobs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from slimlib import _io

__all__ = ["SweepCall", "Shard", "plan", "check_names", "AUTO", "merge", "shard_table", "MergeConflictError",
           "VALUE_COLUMNS", "SHARD_FOLDER"]

#: Sub-folder of ``results/<profile>/`` holding the shard tables, logs and the manifest.
SHARD_FOLDER = "shards"
#: Columns that must agree between two rows with the same key (timings and notes may differ:
#: a rerun reads cached features, so its ``extract_s`` is 0).
VALUE_COLUMNS: tuple[str, ...] = ("d_k", "d_h", "flops", "rel_compute", "params", "value",
                                  "n_train", "n_test")


class MergeConflictError(ValueError):
    """Two tables hold the same row key with different values."""


@dataclass(frozen=True)
class SweepCall:
    """The settings of one :func:`slimlib.chapters.sweep_for` call (model and dataset apart).

    ``widths``, ``seeds``, ``protocols`` of ``None`` mean the profile's values; ``order``,
    ``parts`` and ``metrics`` go to :func:`slimlib.sweep` as given.
    """

    widths: tuple[float, ...] | None = None
    seeds: tuple[int, ...] | None = None
    protocols: tuple[str, ...] | None = None
    order: str = "first"
    parts: tuple[str, ...] = ("attn", "ffn")
    metrics: bool = True

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``sweep_for`` (only the settings that differ from its own
        defaults, so a shard asks for exactly what a chapter asks for)."""
        out: dict[str, Any] = {"widths": self.widths, "seeds": self.seeds,
                               "protocols": self.protocols}
        if self.order != "first":
            out["order"] = self.order
        if tuple(self.parts) != ("attn", "ffn"):
            out["parts"] = self.parts
        if not self.metrics:
            out["metrics"] = False
        return out


@dataclass(frozen=True)
class Shard:
    """One job's work: ``calls`` for ``model`` on ``dataset`` (registry names).

    ``id`` names the shard's table ``<results>/<profile>/shards/<id>.csv``.
    """

    id: str
    model: str
    dataset: str
    calls: tuple[SweepCall, ...] = field(default=(SweepCall(),))

    def run(self, profile: Any) -> pd.DataFrame:
        """Run every call into the shard table; rows already there are reused.

        Returns the rows of all calls (columns :data:`slimlib.sweeping.COLUMNS`).
        """
        from slimlib.chapters import sweep_for

        tables = [sweep_for(profile, [self.model], [self.dataset],
                            table=f"{SHARD_FOLDER}/{self.id}.csv", **call.kwargs())
                  for call in self.calls]
        return pd.concat(tables, ignore_index=True)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "dataset": self.dataset,
                "calls": [vars(c) for c in self.calls]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shard:
        calls = tuple(SweepCall(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in c.items()}) for c in data["calls"])
        return cls(id=data["id"], model=data["model"], dataset=data["dataset"], calls=calls)


def shard_table(profile: Any, shard: Shard | str) -> Path:
    """The table file of ``shard`` (``results_path("shards/<id>.csv", profile)``)."""
    from slimlib.profiles import results_path

    ident = shard.id if isinstance(shard, Shard) else shard
    return results_path(f"{SHARD_FOLDER}/{ident}.csv", profile)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _fits(model: str, dataset: str) -> bool:
    """Whether ``model`` (a registry name or a random-init control label) can be fed
    ``dataset``, from registry metadata alone (no weights, no images)."""
    from slimlib import models as registry
    from slimlib.chapters import runs_on_name
    from slimlib.controls import split_label

    return runs_on_name(registry.spec(split_label(model)[0]), dataset)


def _book_requests(profile: Any, ablation: tuple[str, str] | None
                   ) -> list[tuple[str, str, SweepCall]]:
    """Every ``(model, dataset, call)`` the chapters request of ``sweep_for`` (chapters 1-9),
    in chapter order, for the (model, dataset) pairs the model can be fed. Keep in step with
    :func:`slimlib.claims.gather` and the notebooks' ``sweep_for`` / ``controls_for`` calls.
    ``ablation``: chapter 7's (model, dataset); ``None`` leaves its calls out."""
    from slimlib.controls import control_label

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


#: ``plan(..., ablation=AUTO)``: chapter 7's pair from :func:`slimlib.claims.ablation_model`.
AUTO = "auto"


def check_names(*, models: Sequence[str] = (), datasets: Sequence[str] = ()) -> None:
    """Raise ``ValueError`` (naming close matches) for a model or dataset name the registries
    do not know; a random-init control label is checked by its model's name."""
    from slimlib import data
    from slimlib import models as registry
    from slimlib.controls import split_label

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
        profile: a resolved :class:`slimlib.profiles.Profile` (its ``datasets`` must be set,
            as :func:`slimlib.profiles.resolve` does).
        models, datasets: keep only these registry names (``None``: all). A name the book
            does not use gets the main-curve settings.
        book: ``True``: every row the chapters ask for (main curves of the RS, slimmable and CV
            models, CV models on natural images, the chapter-7 ablations); ``False``: only the
            main curves of ``models`` x ``datasets`` (default: the profile's RS models and
            datasets).
        max_widths: split a call with more widths into chunks of at most this many (one
            shard each), for models too slow for one job's time limit.
        ablation: (``book`` only) chapter 7's (model, dataset); :data:`AUTO` picks it with
            :func:`slimlib.claims.ablation_model`, which loads the profile's datasets (their
            test sizes decide); ``None`` leaves the ablation calls out (a plan printed
            without the data).

    Every model and dataset name is checked against the registries, and only (model,
    dataset) pairs the model can be fed (:func:`slimlib.chapters.runs_on_name`, registry
    metadata only) become shards, so every shard can run.

    Returns:
        Shards in a stable order with unique ids ``<model>__<dataset>[__<k>]``.

    Raises:
        ValueError: an unknown model or dataset name (close matches named), a model of
            ``models`` that fits none of the datasets, or a selection of nothing.
    """
    if profile.datasets is None:
        raise ValueError("profile.datasets is None: pass slimlib.profiles.resolve(profile)")
    if max_widths is not None and (isinstance(max_widths, bool) or not isinstance(
            max_widths, int) or max_widths < 1):
        raise ValueError(f"max_widths must be a positive int or None; got {max_widths!r}")
    for name, value in (("models", models), ("datasets", datasets)):
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list of names, not the string {value!r}")
    from slimlib.controls import split_label

    check_names(models=models or (), datasets=datasets or ())
    if book:
        if isinstance(ablation, str):
            if ablation != AUTO:
                raise ValueError(f"ablation must be {AUTO!r}, None or a (model, dataset) pair; "
                                 f"got {ablation!r}")
            from slimlib.claims import ablation_model

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


# ============================================================================ merge


def _keys(frame: pd.DataFrame) -> pd.Series:
    from slimlib.sweeping import KEY_COLUMNS

    parts = []
    for col in KEY_COLUMNS:
        values = frame[col]
        if col in ("width", "train_fraction"):
            values = values.astype(float).round(9).map(repr)
        parts.append(values.astype(str))
    return pd.Series(list(zip(*parts, strict=True)), index=frame.index)


def _same(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            return False
        return (math.isnan(fa) and math.isnan(fb)) or abs(fa - fb) <= atol
    return str(a) == str(b)


def merge(tables: Iterable[str | os.PathLike], out: str | os.PathLike, *,
          include_existing: bool = True, atol: float = 0.0) -> pd.DataFrame:
    """Merge sweep tables into ``out`` (written atomically, in :func:`slimlib.sweep`'s format).

    Args:
        tables: shard tables (files that do not exist yet are skipped).
        out: the merged table, e.g. ``results_path("sweep.csv", profile)``.
        include_existing: keep the rows ``out`` already holds (e.g. from an in-process run).
        atol: absolute tolerance when comparing :data:`VALUE_COLUMNS` of duplicate keys.

    Returns:
        The merged table (first occurrence of each key; ``out``'s rows first, then the tables
        in order). ``attrs``: ``path``, ``n_duplicates`` (identical rows collapsed).

    Raises:
        MergeConflictError: a key occurs with different :data:`VALUE_COLUMNS`; names the key,
            the column, both values and both files. ``out`` is left untouched.
    """
    from slimlib.sweeping import COLUMNS, _fmt, read_table

    out = Path(out)
    sources = ([out] if include_existing and out.is_file() else []) + \
        [Path(t) for t in tables if Path(t).is_file() and Path(t).resolve() != out.resolve()]
    frames = []
    for path in sources:
        # repair=False: a shard may still be writing; its partial last line is skipped
        frame = read_table(path, repair=False)
        frames.append(frame.assign(_source=str(path)))
    if not frames:  # nothing landed yet: an empty table with the header
        _io.atomic_write(out, ",".join(COLUMNS) + "\n")
        empty = read_table(out, repair=False)
        empty.attrs.update(path=str(out), n_duplicates=0)
        return empty
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.assign(_key=_keys(frame))
    first = frame.drop_duplicates("_key", keep="first")
    dups = frame[frame.duplicated("_key", keep="first")]
    if not dups.empty:
        ref = first.set_index("_key")
        for _, row in dups.iterrows():
            kept = ref.loc[[row["_key"]]].iloc[0]
            for col in VALUE_COLUMNS:
                if not _same(row[col], kept[col], atol):
                    key = ", ".join(f"{c}={row[c]!r}" for c in ("model", "dataset", "protocol",
                                                                "metric", "seed", "width",
                                                                "order", "parts"))
                    raise MergeConflictError(
                        f"row {key} has {col}={kept[col]!r} in {kept['_source']} but "
                        f"{row[col]!r} in {row['_source']}; delete the wrong file (or its row) "
                        f"and merge again")
    merged = first.drop(columns=["_key", "_source"]).reset_index(drop=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in merged.to_dict("records"):
        writer.writerow([_fmt(record[c]) for c in COLUMNS])
    _io.atomic_write(out, buf.getvalue())
    merged.attrs["path"] = str(out)
    merged.attrs["n_duplicates"] = int(len(dups))
    return merged


