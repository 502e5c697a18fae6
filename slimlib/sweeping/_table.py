"""The sweep table: its CSV format, a tolerant reader and a lock-safe appender.

:data:`COLUMNS` in file order, :data:`KEY_COLUMNS` identifying a row, exact (round-trip)
number formatting, :func:`read_table` (drops a torn last line, quarantines unreadable rows,
drops duplicate keys, repairs the file) and ``_ResultFile`` (append-only, fsync'd, safe for
concurrent writers under the table's file lock). See ``docs/sweep.md``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slimlib import _io

__all__ = ["COLUMNS", "KEY_COLUMNS", "NO_SEED", "read_table", "write_table", "quarantine_path"]

#: Columns that identify a row; a rerun skips every requested row whose key is on disk.
KEY_COLUMNS: tuple[str, ...] = (
    "model", "model_fp", "dataset", "data_fp", "synthetic", "protocol", "metric", "seed",
    "width", "parts", "order", "scale", "train_fraction",
)
#: All columns of the sweep table, in file order.
COLUMNS: tuple[str, ...] = (
    "model", "dataset", "synthetic", "protocol", "metric", "seed", "width", "parts", "order",
    "scale", "train_fraction", "d_k", "d_h", "flops", "rel_compute", "params", "value",
    "runtime_s", "extract_s", "n_train", "n_test", "notes", "model_fp", "data_fp", "outcomes",
)
#: Columns of tables written before ``outcomes`` existed; :func:`read_table` reads them with
#: empty ``outcomes`` cells (and, when repairing, rewrites the file with the new header).
_LEGACY_COLUMNS: tuple[str, ...] = COLUMNS[:-1]
#: Columns a row passed to the appender may leave out (written as empty cells).
_OPTIONAL_COLUMNS: tuple[str, ...] = ("outcomes",)
#: Seed value of ``protocol="features"`` rows when the features do not depend on a seed.
NO_SEED = -1

_STR_COLS = ("model", "dataset", "protocol", "metric", "parts", "order", "scale", "notes",
             "model_fp", "data_fp", "outcomes")
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


def write_table(frame: Any, path: str | os.PathLike) -> Path:
    """Write ``frame`` (the columns :data:`COLUMNS`) to ``path`` as a sweep table, in the format
    :func:`read_table` reads, atomically (temporary file + ``os.replace``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in frame.to_dict("records"):
        writer.writerow([_fmt(record[c]) for c in COLUMNS])
    _io.atomic_write(path, buf.getvalue())
    return Path(path)


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
    * A table written before the ``outcomes`` column existed (its header is :data:`COLUMNS`
      without ``outcomes``) reads with empty ``outcomes`` cells; with ``repair=True`` the
      file is rewritten with the current header so later appends fit it.
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
    legacy = tuple(header) == _LEGACY_COLUMNS
    if legacy:  # written before the outcomes column: every row gets an empty cell
        lines = [_header()] + [line[:-1] + ",\n" if len(next(csv.reader([line]), []))
                               == len(_LEGACY_COLUMNS) else line for line in lines[1:]]
    elif tuple(header) != COLUMNS:
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
    if repair and (dropped or bad or duplicates or legacy):
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
                    writer.writerow([_fmt(row.get(c) if c in _OPTIONAL_COLUMNS else row[c])
                                     for c in COLUMNS])
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
