"""Resumable width sweeps: slim → extract frozen features → probe, one tidy row at a time.

:func:`sweep` evaluates every model × dataset × width × seed × protocol and appends each
finished row to a CSV (``results_dir()/sweep.csv`` unless ``out=`` is given) with
flush + fsync, so a killed run loses at most the row in progress and a rerun skips every row
already on disk. Features come from the atomic cache of :mod:`slimlib.features`.
:func:`retention` turns the table into the paper's retention metric(s) / metric(1).
See ``docs/sweep.md`` for the table schema and the resume rules.

One job per module: :mod:`~slimlib.sweeping.table` (the CSV format, :func:`read_table`),
:mod:`~slimlib.sweeping.inputs` (the canonical input form and its converters),
:mod:`~slimlib.sweeping.run` (:func:`sweep`) and :mod:`~slimlib.sweeping.analysis`
(:func:`retention`); :mod:`~slimlib.sweeping.outcomes` encodes the per-image outcomes
(:class:`Outcomes`, :func:`encode`, :func:`decode`) each single-label probe row carries in its
``outcomes`` cell.
"""

from slimlib.constants import FEATURE_METRICS
from slimlib.sweeping import outcomes
from slimlib.sweeping.analysis import retention
from slimlib.sweeping.inputs import SweepData, as_datasets, as_models
from slimlib.sweeping.outcomes import Outcomes, decode, encode
from slimlib.sweeping.run import _score, sweep
from slimlib.sweeping.table import (
    COLUMNS,
    KEY_COLUMNS,
    NO_SEED,
    _fmt,
    _frame_keys,
    _ResultFile,
    quarantine_path,
    read_table,
)

__all__ = ["sweep", "retention", "read_table", "COLUMNS", "KEY_COLUMNS", "FEATURE_METRICS",
           "NO_SEED", "quarantine_path", "SweepData", "as_datasets", "as_models", "outcomes",
           "Outcomes", "encode", "decode"]

# private names other slimlib modules and the tests use, kept importable from here
_PRIVATE = (_fmt, _frame_keys, _ResultFile, _score)
