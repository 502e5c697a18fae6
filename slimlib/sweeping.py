"""Resumable width sweeps: slim → extract frozen features → probe, one tidy row at a time.

:func:`sweep` evaluates every model × dataset × width × seed × protocol and appends each
finished row to a CSV (``results_dir()/sweep.csv`` unless ``out=`` is given) with
flush + fsync, so a killed run loses at most the row in progress and a rerun skips every row
already on disk. Features come from the atomic cache of :mod:`slimlib.features`.
:func:`retention` turns the table into the paper's retention metric(s) / metric(1).
See ``docs/sweep.md`` for the table schema and the resume rules.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimlib import _io
from slimlib import features as _features
from slimlib._validation import check_choice, check_int, check_widths
from slimlib.config import results_dir
from slimlib.constants import (
    FEATURE_METRICS,
    ORDERS,
    PARTS,
    PROTOCOLS,
    REDUNDANCY_METRICS,
    SCALES,
    WIDTHS,
)
from slimlib.specs import ImageDataset, ModelSpec

__all__ = ["sweep", "retention", "read_table", "COLUMNS", "KEY_COLUMNS", "FEATURE_METRICS"]

#: Columns that identify a row; a rerun skips every requested row whose key is on disk.
KEY_COLUMNS: tuple[str, ...] = (
    "model", "model_fp", "dataset", "data_fp", "synthetic", "protocol", "metric", "seed",
    "width", "parts", "order", "scale", "train_fraction",
)
#: All columns of the sweep table, in file order.
COLUMNS: tuple[str, ...] = (
    "model", "dataset", "synthetic", "protocol", "metric", "seed", "width", "parts", "order",
    "scale", "train_fraction", "d_k", "d_h", "flops", "rel_compute", "params", "value",
    "runtime_s", "extract_s", "n_train", "n_test", "notes", "model_fp", "data_fp",
)
#: Seed value of ``protocol="features"`` rows when the features do not depend on a seed.
NO_SEED = -1

_STR_COLS = ("model", "dataset", "protocol", "metric", "parts", "order", "scale", "notes",
             "model_fp", "data_fp")
_INT_COLS = ("seed", "flops", "params", "n_train", "n_test")
_FLOAT_COLS = ("width", "train_fraction", "rel_compute", "value", "runtime_s", "extract_s")
_BOOL_COLS = ("synthetic",)
_DIM_COLS = ("d_k", "d_h")


# ============================================================================ table file


def _empty_table() -> pd.DataFrame:
    return _typed({c: [] for c in COLUMNS})


def _typed(data: Mapping[str, list[str]]) -> pd.DataFrame:
    """Build a DataFrame from string columns with exact (round-trip) number parsing."""
    out: dict[str, Any] = {}
    for col in COLUMNS:
        raw = data[col]
        if col in _STR_COLS:
            out[col] = pd.Series(raw, dtype=object)
        elif col in _BOOL_COLS:
            out[col] = pd.Series([v == "True" for v in raw], dtype=bool)
        elif col in _INT_COLS:
            out[col] = pd.Series([int(v) for v in raw], dtype="int64")
        elif col in _FLOAT_COLS:
            out[col] = pd.Series([float(v) if v else math.nan for v in raw], dtype="float64")
        else:  # d_k / d_h: int when uniform over blocks, "a/b/…" otherwise
            vals = [int(v) if v.lstrip("-").isdigit() else v for v in raw]
            out[col] = pd.Series(vals, dtype="int64" if all(isinstance(v, int) for v in vals)
                                 else object)
    return pd.DataFrame(out, columns=list(COLUMNS))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return " ".join(str(value).split())  # one physical line per row




def _header() -> str:
    return ",".join(COLUMNS) + "\n"


def _check_field(col: str, value: str) -> None:
    """Raise ``ValueError`` when ``value`` cannot be the CSV text of column ``col``."""
    if col in _BOOL_COLS:
        if value not in ("True", "False"):
            raise ValueError("expected True or False")
    elif col in _INT_COLS:
        int(value)
    elif col in _FLOAT_COLS:
        if value:
            float(value)
        elif col in KEY_COLUMNS:  # width, train_fraction: part of the row's key
            raise ValueError("empty")
    elif col in _DIM_COLS and not value:
        raise ValueError("expected an integer or 'a/b/...'")


def _bad_field(fields: list[str]) -> tuple[str, str, str] | None:
    """``(column, value, reason)`` of the first field that does not parse, else ``None``."""
    for col, value in zip(COLUMNS, fields, strict=True):
        try:
            _check_field(col, value)
        except ValueError as err:
            return col, value, str(err)
    return None


def quarantine_path(path: str | os.PathLike) -> Path:
    """Side file ``<name>.quarantine.csv`` next to a sweep table: rows :func:`read_table`
    moved out of it (``line,reason,row``) so they are recomputed, kept for inspection."""
    path = Path(path)
    return path.with_name(f"{path.stem}.quarantine.csv")


def read_table(path: str | os.PathLike, *, repair: bool = True,
               quarantine: bool = False) -> pd.DataFrame:
    """Read a sweep CSV written by :func:`sweep`.

    * A trailing line without its newline (a run killed mid-write) or a line with the wrong
      number of fields is dropped with a ``RuntimeWarning``.
    * A field that does not parse (``value`` = ``abc``) raises a ``ValueError`` naming the
      file, line and column, unless ``quarantine=True`` (what :func:`sweep` uses): then the
      row is moved to :func:`quarantine_path` with a ``RuntimeWarning`` naming file and line,
      and a sweep recomputes it.
    * Rows whose key (:data:`KEY_COLUMNS`) repeats an earlier row's (e.g. written by two
      sweeps before the table was locked) are dropped, the first kept, with a
      ``RuntimeWarning``.

    With ``repair=True`` the file is then rewritten atomically (under the table's lock)
    without the dropped lines, so later appends start on a clean line.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the header is not :data:`COLUMNS` (another tool or version wrote it), or a
            bad field with ``quarantine=False``.
    """
    path = Path(path)
    if repair and os.access(path.parent, os.W_OK):
        try:
            lock = _io.file_lock(path)
            lock.acquire()
        except OSError:  # e.g. a read-only results folder: read, do not repair
            pass
        else:
            try:
                return _read_table(path, repair=True, quarantine=quarantine)
            finally:
                lock.release()
    return _read_table(path, repair=False, quarantine=quarantine)


def _read_table(path: Path, *, repair: bool, quarantine: bool) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    if not text:
        return _empty_table()
    dropped: list[str] = []
    clean = text
    if not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        dropped.append(text[cut:])
        clean = text[:cut]
    lines = clean.splitlines(keepends=True)
    if not lines:
        if repair:
            _io.atomic_write(path, "")
        warnings.warn(f"{path}: dropped a partial header line", RuntimeWarning, stacklevel=3)
        return _empty_table()
    header = next(csv.reader([lines[0]]))
    if tuple(header) != COLUMNS:
        raise ValueError(f"{path} is not a slimlib sweep table of this version: its columns are "
                         f"{header}, expected {list(COLUMNS)}. Pass another out= path.")
    cols: dict[str, list[str]] = {c: [] for c in COLUMNS}
    good = [lines[0]]
    bad: list[tuple[int, str, str]] = []  # (line number, reason, line)
    duplicates: list[int] = []
    seen: set[tuple] = set()
    for number, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        if len(fields) != len(COLUMNS):
            dropped.append(line)
            continue
        problem = _bad_field(fields)
        if problem is not None:
            col, value, reason = problem
            where = f"{path}, line {number}, column {col!r}: {value!r} ({reason})"
            if not quarantine:
                raise ValueError(f"{where}. Fix or delete that line, or let slimlib.sweep move "
                                 f"it to {quarantine_path(path).name} and recompute it "
                                 "(read_table(..., quarantine=True)).")
            bad.append((number, where, line))
            continue
        key = _row_key(dict(zip(COLUMNS, fields, strict=True)))
        if key in seen:
            duplicates.append(number)
            continue
        seen.add(key)
        good.append(line)
        for col, value in zip(COLUMNS, fields, strict=True):
            cols[col].append(value)
    if dropped:
        warnings.warn(f"{path}: dropped {len(dropped)} incomplete line(s) left by an interrupted "
                      f"run (first: {dropped[0][:80]!r}); those rows will be recomputed",
                      RuntimeWarning, stacklevel=3)
    if bad:
        warnings.warn(f"{path}: moved {len(bad)} row(s) with unreadable fields to "
                      f"{quarantine_path(path)} (first: {bad[0][1]}); those rows will be "
                      "recomputed", RuntimeWarning, stacklevel=3)
        if repair:
            _quarantine(path, bad)
    if duplicates:
        warnings.warn(f"{path}: dropped {len(duplicates)} row(s) whose key repeats an earlier "
                      f"row (lines {duplicates[:5]}{' ...' if len(duplicates) > 5 else ''}), "
                      "e.g. from two sweeps writing one table without a lock; the first of "
                      "each is kept", RuntimeWarning, stacklevel=3)
    if repair and (dropped or bad or duplicates):
        _io.atomic_write(path, "".join(good))
    return _typed(cols)


def _quarantine(path: Path, bad: list[tuple[int, str, str]]) -> None:
    """Append the bad rows to the side file (atomically rewritten: old rows + new ones)."""
    side = quarantine_path(path)
    old = side.read_text(encoding="utf-8") if side.is_file() else ""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not old:
        writer.writerow(["line", "reason", "row"])
    for number, where, line in bad:
        writer.writerow([number, where, line.rstrip("\n")])
    _io.atomic_write(side, old + buf.getvalue())


def _row_key(row: Mapping[str, Any]) -> tuple:
    return (str(row["model"]), str(row["model_fp"]), str(row["dataset"]), str(row["data_fp"]),
            _as_bool(row["synthetic"]), str(row["protocol"]), str(row["metric"]),
            int(row["seed"]), round(float(row["width"]), 9), str(row["parts"]),
            str(row["order"]), str(row["scale"]), round(float(row["train_fraction"]), 9))


def _as_bool(value: Any) -> bool:
    return value == "True" if isinstance(value, str) else bool(value)


def _frame_keys(frame: pd.DataFrame) -> list[tuple]:
    return [_row_key(r) for r in frame[list(KEY_COLUMNS)].to_dict("records")]


class _ResultFile:
    """Append-only CSV with one fsync'd write per batch of rows, safe for concurrent writers.

    Every write happens under the table's inter-process lock (:func:`slimlib._io.file_lock`,
    ``.<name>.lock`` next to it). Before appending, rows other processes appended since
    this one last looked are read (or the whole table again, when another process rewrote
    it), and rows whose key is already on disk are not written again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = _io.file_lock(path)
        with self.lock:
            self._reload()

    def _reload(self) -> None:
        """Read (and repair) the whole table; remember where it ends."""
        path = self.path
        if path.exists() and path.stat().st_size:
            frame = read_table(path, quarantine=True)
            if not path.stat().st_size:  # the repair removed a partial header
                _io.atomic_write(path, _header())
        else:
            frame = _empty_table()
            _io.atomic_write(path, _header())
        self.keys = set(_frame_keys(frame))
        self._mark()

    def _mark(self) -> None:
        st = os.stat(self.path)
        self._ident, self._offset = (st.st_dev, st.st_ino), st.st_size

    def _catch_up(self) -> None:
        """Learn the keys other writers appended since :meth:`_mark` (call under the lock)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._reload()
        if (st.st_dev, st.st_ino) != self._ident or st.st_size < self._offset:
            return self._reload()  # rewritten (repaired) by another process
        if st.st_size == self._offset:
            return None
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            tail = f.read().decode("utf-8")
        if not tail.endswith("\n"):  # a writer died mid-line: repair, then read it all
            return self._reload()
        for fields in csv.reader(io.StringIO(tail)):
            if len(fields) == len(COLUMNS) and _bad_field(fields) is None:
                self.keys.add(_row_key(dict(zip(COLUMNS, fields, strict=True))))
            else:
                return self._reload()
        self._offset = st.st_size
        return None

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self.lock:
            self._catch_up()
            new = [r for r in rows if _row_key(r) not in self.keys]
            if new:
                buf = io.StringIO()
                writer = csv.writer(buf, lineterminator="\n")
                for row in new:
                    writer.writerow([_fmt(row[c]) for c in COLUMNS])
                with open(self.path, "a", encoding="utf-8", newline="") as f:
                    f.write(buf.getvalue())
                    f.flush()
                    os.fsync(f.fileno())
                self._offset = os.stat(self.path).st_size
            self.keys.update(_row_key(r) for r in rows)

    def refresh(self) -> set[tuple]:
        """The keys now on disk (including other writers' rows)."""
        with self.lock:
            self._catch_up()
        return self.keys


# ============================================================================ inputs


@dataclass
class _Data:
    name: str
    train: ImageDataset | tuple[torch.Tensor, torch.Tensor]
    test: ImageDataset | tuple[torch.Tensor, torch.Tensor]
    synthetic: bool = False
    fp_train: str = ""
    fp_test: str = ""
    fp: str = ""
    metric: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return len(_labels_of(self.train))

    @property
    def n_test(self) -> int:
        return len(_labels_of(self.test))


def _labels_of(data: ImageDataset | tuple[Any, Any]) -> torch.Tensor:
    return data.labels if isinstance(data, ImageDataset) else torch.as_tensor(data[1])


def _is_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple | list) and len(obj) == 2
            and all(isinstance(o, ImageDataset) for o in obj))


def _is_prepared_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple | list) and len(obj) == 2
            and all(isinstance(o, tuple | list) and len(o) == 2 for o in obj))


def _dataset_items(datasets: Any, train_split: str, test_split: str,
                   data_root: Any) -> list[_Data]:
    if isinstance(datasets, str) or _is_pair(datasets):
        datasets = [datasets]
    items = list(datasets.items()) if isinstance(datasets, Mapping) \
        else [(None, d) for d in datasets]
    if not items:
        raise ValueError("datasets must name at least one dataset")
    out = []
    for name, ds in items:
        if isinstance(ds, str):
            from slimlib import data as _data

            train = _data.load(ds, train_split, root=data_root)
            test = _data.load(ds, test_split, root=data_root)
            out.append(_Data(name or ds, train, test))
        elif _is_pair(ds):
            train, test = ds
            if tuple(train.classes) != tuple(test.classes) or train.multilabel != test.multilabel:
                raise ValueError(f"{train.name}: train and test splits must share one label space;"
                                 f" got classes {train.classes} vs {test.classes}")
            out.append(_Data(name or train.name, train, test))
        elif _is_prepared_pair(ds):
            if name is None:
                raise ValueError("prepared (x, y) pairs need a name: pass "
                                 "datasets={'name': ((x_train, y_train), (x_test, y_test))}")
            out.append(_Data(name, tuple(ds[0]), tuple(ds[1])))
        else:
            raise TypeError("each dataset must be a registry name, a (train, test) pair of "
                            f"ImageDataset, or name -> such a pair; got {type(ds).__name__}")
    for d in out:
        d.synthetic = any(isinstance(s, ImageDataset) and s.synthetic for s in (d.train, d.test))
        d.notes = [n for s in (d.train, d.test) if isinstance(s, ImageDataset) for n in s.notes]
    return out


def _model_items(models: Any, pretrained: Any) -> list[tuple[str, Callable[[], nn.Module]]]:
    if isinstance(models, str | nn.Module):
        models = [models]
    items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    if not items:
        raise ValueError("models must name at least one model")
    out = []
    for name, m in items:
        if isinstance(m, str):
            def load(ident: str = m) -> nn.Module:
                from slimlib import models as _models

                return _models.load(ident, pretrained=pretrained)
            out.append((name or m, load))
        elif isinstance(m, nn.Module):
            spec = getattr(m, "spec", None)
            label = name or (spec.name if isinstance(spec, ModelSpec) else None)
            if label is None:
                raise ValueError("a model passed as a module needs a name: use "
                                 "models={'name': module} or give it a .spec")
            out.append((label, lambda mod=m: mod))
        else:
            raise TypeError(f"each model must be a registry name or an nn.Module; got "
                            f"{type(m).__name__}")
    return out


def _check_seeds(seeds: Iterable[Any]) -> list[int]:
    values = list(seeds)
    if not values:
        raise ValueError("seeds must hold at least one non-negative int")
    for s in values:
        check_int(s, "seeds (each)", low=0)
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be unique; got {values}")
    return [int(s) for s in values]


def _check_protocols(protocols: Iterable[str]) -> list[str]:
    values = [protocols] if isinstance(protocols, str) else list(protocols)
    if not values:
        raise ValueError(f"protocols must hold at least one of {PROTOCOLS}")
    for p in values:
        check_choice(p, PROTOCOLS, "protocol")
    return list(dict.fromkeys(values))


def _check_parts(parts: Iterable[str]) -> str:
    values = (parts,) if isinstance(parts, str) else tuple(parts)
    if not values or any(p not in PARTS for p in values):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {parts!r}")
    return "+".join(p for p in PARTS if p in values)


def _dedupe_widths(widths: Iterable[Any]) -> list[float]:
    seen: dict[float, float] = {}
    for w in check_widths(widths):
        seen.setdefault(round(w, 9), w)
    return list(seen.values())


# ============================================================================ sweep


class _Timer(defaultdict):
    def __init__(self) -> None:
        super().__init__(float)

    def add(self, stage: str, start: float) -> float:
        elapsed = time.perf_counter() - start
        self[stage] += elapsed
        return elapsed


def _short(*digests: str) -> str:
    return hashlib.blake2b("".join(digests).encode(), digest_size=6).hexdigest()


def _dims(slimmed: nn.Module) -> tuple[Any, Any]:
    from slimlib.slimming import describe

    info = describe(slimmed)
    dims = []
    for col in ("d_k", "d_h"):
        vals = list(dict.fromkeys(int(v) for v in info[col]))
        dims.append(vals[0] if len(vals) == 1 else "/".join(map(str, vals)))
    return dims[0], dims[1]


def _score(protocol: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
           seed: int, train_fraction: float) -> tuple[float, list[str]]:
    """One probe score plus the warning messages it raised (e.g. a class absent from a split)."""
    from slimlib import probes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = probes.score(protocol, train[0], train[1], test[0], test[1], seed=seed,
                             train_fraction=train_fraction)
    notes = list(dict.fromkeys(f"{type(w.message).__name__}: {w.message}" for w in caught))
    return float(value), notes


def _feature_metrics(feats: np.ndarray, reference: np.ndarray | None
                     ) -> dict[str, tuple[float, str]]:
    """The :data:`FEATURE_METRICS` of test features: name -> (value, note)."""
    from slimlib import metrics

    out: dict[str, tuple[float, str]] = {}
    try:
        desc = metrics.describe_features(feats)
        for name in REDUNDANCY_METRICS:
            out[name] = (float(desc[name]), "")
    except ValueError as err:
        out.update({name: (math.nan, f"undefined: {err}") for name in REDUNDANCY_METRICS})
    if reference is None:
        out["cka_full"] = (math.nan, "no full-width reference")
    else:
        try:
            out["cka_full"] = (float(metrics.linear_cka(feats, reference)), "")
        except ValueError as err:
            out["cka_full"] = (math.nan, f"undefined: {err}")
    return out


def _example_input(model: nn.Module, data: _Data) -> torch.Tensor:
    if isinstance(data.test, ImageDataset):
        spec = model.spec
        return torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
    return torch.as_tensor(data.test[0][:1]).float()


@dataclass
class _Settings:
    """Options shared by every model × dataset job of one :func:`sweep` call."""

    parts: tuple[str, ...]
    order: str
    scale: str
    train_fraction: float
    batch_size: int
    device: torch.device
    precision: str
    progress: bool

    @property
    def parts_label(self) -> str:
        return "+".join(self.parts)

    @property
    def deterministic(self) -> bool:
        """Probe scores do not depend on the seed (full training set, fixed slimming)."""
        return self.train_fraction == 1.0 and self.order != "random"


class _Job:
    """One model on one dataset: prepares inputs once and evaluates width after width."""

    def __init__(self, name: str, model: nn.Module, model_fp: str, data: _Data,
                 cfg: _Settings, table: _ResultFile, timer: _Timer,
                 compute_memo: dict[tuple, Any]) -> None:
        self.name, self.model, self.model_fp, self.data = name, model, model_fp, data
        self.cfg, self.table, self.timer = cfg, table, timer
        self.compute_memo = compute_memo
        image_data = isinstance(data.train, ImageDataset)
        spec = getattr(model, "spec", None)
        if image_data and not isinstance(spec, ModelSpec):
            raise ValueError(f"model {name!r} has no .spec (ModelSpec), so images of "
                             f"{data.name!r} cannot be prepared for it")
        self.prep_id = _features.preprocessing_id(spec if image_data else None)
        self.notes = list(data.notes)
        if image_data:
            self.notes += _features.preparation_notes(data.train, spec)
        self._inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._reference: np.ndarray | None = None

    # -------------------------------------------------------------- helpers
    def slim(self, width: float, order: str, seed: int | None) -> nn.Module:
        from slimlib.slimming import slim

        return slim(self.model, width, parts=self.cfg.parts, order=order, seed=seed,
                    scale=self.cfg.scale)

    def row(self, protocol: str, metric: str, seed: int, width: float) -> dict[str, Any]:
        return {"model": self.name, "model_fp": self.model_fp[:12], "dataset": self.data.name,
                "data_fp": self.data.fp, "synthetic": self.data.synthetic,
                "protocol": protocol, "metric": metric, "seed": seed, "width": width,
                "parts": self.cfg.parts_label, "order": self.cfg.order, "scale": self.cfg.scale,
                "train_fraction": self.cfg.train_fraction}

    def inputs(self, split: str) -> tuple[torch.Tensor, torch.Tensor] | ImageDataset:
        """Prepared ``(x, y)`` of a split, prepared once and reused for every width; the
        :class:`ImageDataset` itself when too large to hold prepared (extract then streams)."""
        ds = self.data.train if split == "train" else self.data.test
        if not isinstance(ds, ImageDataset):
            return _features.as_prepared_pair(ds)
        if _features.prepared_gib(ds, self.model.spec) > _features.MAX_PREPARED_GIB:
            return ds
        if split not in self._inputs:
            start = time.perf_counter()
            self._inputs[split] = (_features.prepare_dataset(ds, self.model.spec), ds.labels)
            self.timer.add("prepare", start)
        return self._inputs[split]

    def features(self, split: str, slimmed: nn.Module, fingerprint: str, width: float
                 ) -> tuple[np.ndarray, np.ndarray, float]:
        """Cached or freshly extracted ``(features, labels, extraction seconds)``.

        The cache key holds :func:`~slimlib.features.module_fingerprint` of the *slimmed*
        model, which covers the original weights and width, parts, order, seed and scale, so
        widths that yield the same model (ViT-S: s = 0.002 and 0.0025) share one entry.
        """
        key = _features.feature_key(
            model=self.name, weights=fingerprint, dataset=self.data.name, split=split,
            data=self.data.fp_train if split == "train" else self.data.fp_test,
            preprocessing=self.prep_id, precision=self.cfg.precision)
        hit = _features.load_cached(
            key, labels=_labels_of(self.data.train if split == "train" else self.data.test))
        if hit is not None:
            return hit[0], hit[1], 0.0
        inputs = self.inputs(split)
        start = time.perf_counter()
        feats, labels = _features.extract(
            slimmed, inputs, batch_size=self.cfg.batch_size, device=self.cfg.device,
            cache_key=key, progress=self.cfg.progress, name=self.name, width=width)
        return feats, labels, self.timer.add("extract", start)

    def reference(self) -> np.ndarray:
        """Width-1 test features (the CKA reference), computed or loaded once per job."""
        if self._reference is None:
            full = self.slim(1.0, "first", None)
            fingerprint = _features.module_fingerprint(full)
            self._reference = self.features("test", full, fingerprint, 1.0)[0]
        return self._reference

    def full_flops(self, example: torch.Tensor) -> int:
        key = ("full", tuple(example.shape))
        if key not in self.compute_memo:
            from slimlib.compute import flops

            self.compute_memo[key] = flops(self.slim(1.0, "first", None), example)
        return self.compute_memo[key]

    # -------------------------------------------------------------- main loop
    def run(self, widths: Sequence[float], seeds: Sequence[int], protocols: Sequence[str],
            metrics: bool) -> list[tuple]:
        """Evaluate all missing rows; returns the keys of all requested rows."""
        requested: list[tuple] = []
        variants: list[int | None] = list(seeds) if self.cfg.order == "random" else [None]
        bar = _tqdm(widths, self.cfg.progress, f"{self.name} × {self.data.name}")
        for width in bar:
            for variant in variants:
                probe_seeds = seeds if variant is None else [variant]
                planned = [self.row(p, self.data.metric, s, width) for s in probe_seeds
                           for p in protocols]
                if metrics:
                    fseed = NO_SEED if variant is None else variant
                    planned += [self.row("features", m, fseed, width) for m in FEATURE_METRICS]
                requested += [_row_key(r) for r in planned]
                missing = [r for r in planned if _row_key(r) not in self.table.keys]
                if missing:
                    self.run_width(missing, width, variant)
        return requested

    def run_width(self, missing: list[dict[str, Any]], width: float,
                  variant: int | None) -> None:
        """Compute and append the missing rows of one width (and one random-order seed)."""
        from slimlib.compute import flops, params

        cfg, timer = self.cfg, self.timer
        start = time.perf_counter()
        slimmed = self.slim(width, cfg.order, variant)
        timer.add("slim", start)
        start = time.perf_counter()
        example = _example_input(self.model, self.data)
        memo_key = (round(width, 9), variant, tuple(example.shape))
        if memo_key not in self.compute_memo:  # shared by the datasets of one model
            d_k, d_h = _dims(slimmed)
            n_flops = flops(slimmed, example)
            self.compute_memo[memo_key] = {
                "d_k": d_k, "d_h": d_h, "flops": n_flops,
                "rel_compute": n_flops / self.full_flops(example), "params": params(slimmed)}
        common = {**self.compute_memo[memo_key], "n_train": self.data.n_train,
                  "n_test": self.data.n_test}
        timer.add("flops", start)

        start = time.perf_counter()
        fingerprint = _features.module_fingerprint(slimmed)
        timer.add("slim", start)
        train = self.features("train", slimmed, fingerprint, width)
        test = self.features("test", slimmed, fingerprint, width)
        common["extract_s"] = train[2] + test[2]

        shared: dict[str, tuple[float, list[str], float]] = {}
        feature_values: dict[str, tuple[float, str]] | None = None
        feature_time = 0.0
        for row in missing:
            notes = list(self.notes)
            if row["protocol"] == "features":
                if feature_values is None:
                    full = math.isclose(width, 1.0) and cfg.order != "random"
                    ref = test[0] if full else self.reference()
                    start = time.perf_counter()
                    feature_values = _feature_metrics(test[0], ref)
                    feature_time = timer.add("metrics", start)
                value, note = feature_values[row["metric"]]
                notes += ["test features"] + ([note] if note else [])
                runtime = feature_time
            elif cfg.deterministic and row["protocol"] in shared:
                value, probe_notes, runtime = shared[row["protocol"]]
                notes += probe_notes + ["deterministic probe: same score for every seed"]
            else:
                start = time.perf_counter()
                value, probe_notes = _score(row["protocol"], train[:2], test[:2], row["seed"],
                                            cfg.train_fraction)
                runtime = timer.add("probe", start)
                shared[row["protocol"]] = (value, probe_notes, runtime)
                notes += probe_notes
            start = time.perf_counter()
            self.table.append([{**row, **common, "value": value, "runtime_s": runtime,
                                "notes": "; ".join(dict.fromkeys(notes))}])
            timer.add("write", start)


def sweep(
    models: Any,
    datasets: Any,
    widths: Iterable[float] | None = None,
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    protocols: Iterable[str] = ("knn",),
    *,
    parts: Sequence[str] = ("attn", "ffn"),
    order: str = "first",
    scale: str = "slimmed",
    pretrained: Any = True,
    train_split: str = "train",
    test_split: str = "test",
    out: str | os.PathLike | None = None,
    metrics: bool = True,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_root: str | os.PathLike | None = None,
    train_fraction: float = 1.0,
) -> pd.DataFrame:
    """Slim every model to every width and score frozen features on every dataset.

    Args:
        models: registry name(s) for :func:`slimlib.models.load`, module(s) with a ``.spec``,
            or a dict name -> module.
        datasets: registry name(s) for :func:`slimlib.data.load`, ``(train, test)`` pairs of
            :class:`ImageDataset`, or a dict name -> such a pair (or -> prepared
            ``((x_train, y_train), (x_test, y_test))`` tensors).
        widths: width factors in (0, 1]; default :data:`slimlib.compute.WIDTHS` (31).
        seeds: probe seeds (they pick the training subset when ``train_fraction < 1``; with
            ``order="random"`` each seed also draws its own kept indices).
        protocols: ``"knn"`` (k=5, cosine) and/or ``"linear"``.
        parts, order, scale: passed to :func:`slimlib.slimming.slim`.
        pretrained: passed to :func:`slimlib.models.load` for registry names.
        train_split, test_split: split names for registry datasets.
        out: CSV path; default ``slimlib.config.results_dir() / "sweep.csv"``.
        metrics: also write ``protocol="features"`` rows (:data:`FEATURE_METRICS` on the test
            features; ``cka_full`` compares with the width-1 test features).
        batch_size, device, progress: feature extraction settings (see
            :func:`slimlib.features.extract`).
        data_root: data root for registry datasets (default ``$SLIMLIB_DATA``).
        train_fraction: fraction of the training features the probes use (seeded subsets).

    Returns:
        The requested rows (columns :data:`COLUMNS`), read back from ``out``; rows already in
        ``out`` are reused, not recomputed. ``table.attrs["timings"]`` holds seconds per stage
        of this call and ``table.attrs["path"]`` the CSV path.

    Raises:
        ValueError: invalid arguments, a model without ``.spec`` for image data, non-finite
            features (names model and width).
    """
    from slimlib.probes import metric_name

    widths = _dedupe_widths(WIDTHS if widths is None else widths)
    seeds = _check_seeds(seeds)
    protocols = _check_protocols(protocols)
    parts_t = tuple(_check_parts(parts).split("+"))
    order = check_choice(order, ORDERS, "order")
    scale = check_choice(scale, SCALES, "scale")
    check_int(batch_size, "batch_size")
    if isinstance(train_fraction, bool) or not 0.0 < float(train_fraction) <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1]; got {train_fraction!r}")
    device = _features.resolve_device(device)
    cfg = _Settings(parts=parts_t, order=order, scale=scale,
                    train_fraction=float(train_fraction), batch_size=batch_size, device=device,
                    precision=_features.precision(device), progress=progress)

    timer = _Timer()
    start = time.perf_counter()
    data_items = _dataset_items(datasets, train_split, test_split, data_root)
    for d in data_items:
        d.fp_train = _features.data_fingerprint(d.train)
        d.fp_test = _features.data_fingerprint(d.test)
        d.fp = _short(d.fp_train, d.fp_test)
        d.metric = metric_name(_labels_of(d.train))
    model_items = _model_items(models, pretrained)
    timer.add("load_data", start)

    path = Path(out) if out is not None else results_dir() / "sweep.csv"
    table = _ResultFile(path)
    requested: list[tuple] = []
    for model_name, load in model_items:
        start = time.perf_counter()
        model = load()
        model_fp = _features.module_fingerprint(model)
        timer.add("load_model", start)
        compute_memo: dict[tuple, Any] = {}
        for data in data_items:
            job = _Job(model_name, model, model_fp, data, cfg, table, timer, compute_memo)
            requested += job.run(widths, seeds, protocols, metrics)
            del job
        del model

    start = time.perf_counter()
    result = _select(read_table(path, quarantine=True), requested)
    timer.add("read", start)
    result.attrs["timings"] = dict(timer)
    result.attrs["path"] = str(path)
    return result


def _tqdm(items: Sequence[Any], progress: bool, desc: str) -> Iterable[Any]:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="width", disable=not progress)


def _select(frame: pd.DataFrame, requested: list[tuple]) -> pd.DataFrame:
    position = {k: i for i, k in reversed(list(enumerate(requested)))}
    keys = _frame_keys(frame)
    frame = frame.assign(_pos=[position.get(k, -1) for k in keys])
    frame = frame[frame["_pos"] >= 0].drop_duplicates("_pos", keep="last")
    return frame.sort_values("_pos").drop(columns="_pos").reset_index(drop=True)


# ============================================================================ retention

_GROUP_COLS = ("model", "model_fp", "dataset", "data_fp", "synthetic", "protocol", "metric",
               "parts", "order", "scale", "train_fraction")


def retention(table: pd.DataFrame, *, include_features: bool = False) -> pd.DataFrame:
    """Retention metric(s) / metric(1) on seed means, per model, dataset, protocol and setting.

    Args:
        table: a sweep table (needs ``model, dataset, protocol, width, value``; ``metric``,
            ``parts``, ``order``, ``scale``, fingerprints, ``rel_compute`` are used if present).
        include_features: also include ``protocol="features"`` rows (off by default: a ratio
            of, e.g., EVR slopes is not a retention).

    Returns:
        One row per group and width: the group columns, ``width``, ``rel_compute`` (if in
        ``table``), ``mean``, ``std`` (over seeds, ddof=1; NaN for one seed), ``n_seeds``,
        ``full`` (seed mean at width 1) and ``retention = mean / full``.

    Raises:
        ValueError: missing columns, or a group without a width-1 row.
    """
    needed = {"model", "dataset", "protocol", "width", "value"}
    if not needed <= set(table.columns):
        raise ValueError(f"table lacks columns {sorted(needed - set(table.columns))}; pass the "
                         "output of slimlib.sweep(...)")
    df = table if include_features else table[table["protocol"] != "features"]
    if df.empty:
        raise ValueError("table holds no probe rows to compute retention from")
    group = [c for c in _GROUP_COLS if c in df.columns]
    df = df.assign(width=df["width"].astype(float).round(9))
    agg = {"mean": ("value", "mean"), "std": ("value", "std"), "n_seeds": ("value", "count")}
    if "rel_compute" in df.columns:
        agg["rel_compute"] = ("rel_compute", "mean")
    stats = df.groupby(group + ["width"], dropna=False, sort=True).agg(**agg).reset_index()
    full = stats[np.isclose(stats["width"], 1.0)].set_index(group)["mean"].rename("full")
    stats = stats.join(full, on=group)
    lacking = stats[stats["full"].isna() & ~stats.set_index(group).index.isin(full.index)]
    if not lacking.empty:
        first = lacking.iloc[0]
        where = ", ".join(f"{c}={first[c]!r}" for c in ("model", "dataset", "protocol", "metric")
                          if c in first)
        raise ValueError(f"no width-1 row for {where}: retention needs metric(1); include 1.0 in "
                         "the sweep widths")
    stats["retention"] = stats["mean"] / stats["full"]
    cols = group + ["width"] + (["rel_compute"] if "rel_compute" in stats else []) + \
        ["mean", "std", "n_seeds", "full", "retention"]
    return stats[cols]
