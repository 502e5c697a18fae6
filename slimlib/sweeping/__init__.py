"""Resumable width sweeps: slim → extract frozen features → probe, one tidy row at a time.

:func:`sweep` evaluates every model × dataset × width × seed × protocol and appends each
finished row to a CSV (``results_dir()/sweep.csv`` unless ``out=`` is given) with
flush + fsync, so a killed run loses at most the row in progress and a rerun skips every row
already on disk. Features come from the atomic cache of :mod:`slimlib.features`.
:func:`retention` turns the table into the paper's retention metric(s) / metric(1).
See ``docs/sweep.md`` for the table schema and the resume rules.

One job per module: ``_table`` (the CSV format, :func:`read_table`),
:mod:`~slimlib.sweeping._inputs` (the canonical input form and its converters),
:mod:`~slimlib.sweeping._run` (:func:`sweep`) and :mod:`~slimlib.sweeping._analysis`
(:func:`retention`); :mod:`~slimlib.sweeping.outcomes` encodes the per-image outcomes
(:class:`Outcomes`, :func:`encode`, :func:`decode`) each single-label probe row carries in its
``outcomes`` cell.
"""

from slimlib.constants import FEATURE_METRICS
from slimlib.sweeping import controls, intervals, outcomes
from slimlib.sweeping._analysis import retention
from slimlib.sweeping._floors import (
    EmbeddingFloor,
    SkippedBlock,
    degenerate_features,
    embedding_floor,
    embedding_only,
    floor_scores,
)
from slimlib.sweeping._inputs import SweepData, as_datasets, as_models
from slimlib.sweeping._run import sweep
from slimlib.sweeping._table import (
    COLUMNS,
    KEY_COLUMNS,
    NO_SEED,
    quarantine_path,
    read_table,
    write_table,
)
from slimlib.sweeping.outcomes import Outcomes, decode, encode

__all__ = ["sweep", "retention", "read_table", "write_table", "COLUMNS", "KEY_COLUMNS", "FEATURE_METRICS",
           "NO_SEED", "quarantine_path", "SweepData", "as_datasets", "as_models", "outcomes",
           "Outcomes", "encode", "decode", "controls", "intervals", "EmbeddingFloor",
           "SkippedBlock", "degenerate_features", "embedding_floor", "embedding_only",
           "floor_scores"]
