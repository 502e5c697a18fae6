"""Split a profile's sweep into independent shards and merge their tables into one.

A :class:`Shard` is one model on one dataset (optionally one chunk of the widths): the list of
sweep calls (the book's: its chapters' ``sweep_for`` calls for that pair), written to
the shard's own table ``results/<profile>/shards/<id>.csv``. Shards share the feature cache
and resume row by row like any sweep. :func:`merge` builds the table the book reads
(``results/<profile>/sweep.csv``) from the shard tables, collapsing identical duplicate rows
and refusing duplicates whose values disagree. ``_submit`` submits shards as jobs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from slimlib import _io

__all__ = ["SweepCall", "Shard", "merge", "shard_table", "MergeConflictError", "VALUE_COLUMNS",
           "SHARD_FOLDER"]

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
    """The settings of one :func:`slimlib.book.sweep_for` call (model and dataset apart).

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

    def run(self, profile: Any, runner: Callable[..., pd.DataFrame]) -> pd.DataFrame:
        """Run every call into the shard table; rows already there are reused.

        Each call runs as ``runner(profile, [model], [dataset], table=..., **call.kwargs())``
        (the book's runner is :func:`slimlib.book.runs.sweep_for`, its ``profile`` a
        :class:`slimlib.book.profiles.Profile`). Returns the rows of all calls (columns
        :data:`slimlib.sweeping.COLUMNS`).
        """
        tables = [runner(profile, [self.model], [self.dataset],
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
    ident = shard.id if isinstance(shard, Shard) else shard
    return profile.results_path(f"{SHARD_FOLDER}/{ident}.csv")


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
    from slimlib.sweeping import COLUMNS, read_table, write_table

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
    write_table(merged, out)
    merged.attrs["path"] = str(out)
    merged.attrs["n_duplicates"] = int(len(dups))
    return merged


