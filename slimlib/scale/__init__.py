"""Scale out: run a sweep as independent shards (SLURM job arrays or local processes, through
submitit), follow them and merge their tables.

A :class:`Shard` is one model on one dataset (optionally a chunk of the widths) and the sweep
calls to make for it. :func:`submit` runs each call as ``runner(profile, [model], [dataset],
table=..., **call)``; ``profile`` is a dataclass with ``name``, ``data_root`` and ``settings``
fields, ``as_dict()`` and ``results_path(name)``. Its settings are replaced by those of the
:class:`JobSettings` given to :func:`submit`, which wraps the one
:class:`slimlib.settings.Settings` of the submitting entry point. The book passes its
:class:`~slimlib.book.profiles.Profile` and :func:`~slimlib.book.runs.sweep_for`, and plans
its shards with :func:`slimlib.book.sweep_plan.plan`. See ``docs/cluster.md``.
"""

from slimlib.scale._shards import (
    SHARD_FOLDER,
    VALUE_COLUMNS,
    MergeConflictError,
    Shard,
    SweepCall,
    merge,
    shard_table,
)
from slimlib.scale._status import (
    JobRecord,
    process_start,
    status,
    stop_local,
    summary,
    wait,
    watch_process,
)
from slimlib.scale._submit import (
    EXECUTORS,
    JobSettings,
    ShardJob,
    check_writable,
    latest_jobs,
    load_manifest,
    manifest_path,
    merge_results,
    submit,
)

__all__ = ["Shard", "SweepCall", "merge", "shard_table", "MergeConflictError", "VALUE_COLUMNS",
           "SHARD_FOLDER", "JobSettings", "ShardJob", "JobRecord", "submit", "status", "wait",
           "summary", "merge_results", "load_manifest", "latest_jobs", "manifest_path",
           "EXECUTORS", "stop_local", "check_writable", "process_start", "watch_process"]
