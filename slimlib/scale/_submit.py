"""Run a sweep's shards as SLURM job arrays (or local processes) through submitit.

:func:`submit` sends :class:`slimlib.scale._shards.Shard` s to a submitit executor (``"slurm"``: one
array task per shard; ``"local"``: worker processes on this machine) and records the
submission in ``results/<profile>/shards/manifest.json``; :func:`status`, :func:`wait` and
:func:`merge_results` finish the job later, from that manifest.

One settings object travels from the entry point into the job: the submitting entry point
(``python -m slimlib sweep``) builds one :class:`slimlib.settings.Settings` (its flags and the
environment, :meth:`~slimlib.settings.Settings.from_env`), wraps it in a :class:`JobSettings`
(plus what is not a location: the code folder, torch hub's folder, the third-party process
variables) and hands it to :func:`submit`. The job's callable (:class:`ShardJob`) is pickled
with it and runs its shards with ``profile.settings`` being that same object, so nothing
depends on the environment of the shell that submitted it or of the node that runs it. The
third-party process variables (``HF_HOME``, the offline flags) reach the job as its
environment through submitit's setup lines (:meth:`JobSettings.setup`): no Python code here
reads or writes ``os.environ``. A job that hits its time limit or is preempted checkpoints
through submitit's requeue mechanism (:class:`ShardJob` is a
``submitit.helpers.Checkpointable``) and resumes from its finished rows. See
``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimlib._validation import check_int, require
from slimlib.scale._shards import SHARD_FOLDER, Shard, merge
from slimlib.scale._status import JobRecord, process_start, watch_process
from slimlib.settings import PROCESS_ENVS, Settings, process_env

submitit = require("submitit", "scale")

__all__ = ["JobSettings", "ShardJob", "submit", "merge_results", "load_manifest",
           "latest_jobs", "manifest_path", "EXECUTORS", "check_writable"]

EXECUTORS = ("slurm", "local")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ============================================================================ settings


@dataclass(frozen=True)
class JobSettings:
    """What a shard job needs to run as its submitter meant: the one :class:`Settings` plus
    what is not a location of it.

    Attributes:
        settings: the locations (data root, cache, results, weights, GEO-Bench, ImageNet),
            built once at the submitting entry point; the shards run with exactly this object
            as ``profile.settings``. Shard tables land in
            ``<settings.results>/<profile>/shards/``.
        hub_dir: torch hub folder (pretrained weights under ``<hub_dir>/checkpoints/``); the
            job's entry point (:meth:`ShardJob.__call__`) makes it torch hub's folder.
        code_dir: folder holding the ``slimlib`` package the job imports (put on PYTHONPATH).
        process_env: the third-party process variables
            (:data:`slimlib.settings.PROCESS_ENVS`: ``HF_HOME``, offline flags) set on the
            submitting side, as pairs; the job is started with exactly these (the others are
            unset there), see :meth:`setup`.
    """

    settings: Settings
    hub_dir: Path
    code_dir: Path
    process_env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.settings, Settings):
            raise TypeError(f"settings must be a slimlib.settings.Settings; got "
                            f"{type(self.settings).__name__} (build one at your entry point "
                            "with Settings.from_env())")
        bad = [key for key, _ in self.process_env if not _ENV_NAME.fullmatch(key)]
        if bad:
            raise ValueError(f"process_env names must be environment variable names; got {bad}")

    @classmethod
    def resolve(cls, settings: Settings, *, hub_dir: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> JobSettings:
        """``settings`` for the jobs, with torch hub's folder (``hub_dir``, default torch's
        own, ``$TORCH_HOME/hub``) and the process variables of ``environ`` (default this
        process's, read by :func:`slimlib.settings.process_env`): call it at the submitting
        entry point, once."""
        import slimlib

        if hub_dir is None:
            import torch

            hub_dir = torch.hub.get_dir()
        code = Path(slimlib.__file__).resolve().parents[1]
        return cls(settings, Path(hub_dir).expanduser().resolve(), code,
                   tuple(process_env(environ).items()))

    def for_profile(self, profile: Any) -> Any:
        """``profile`` with these settings (its ``settings`` this very object, its data root
        theirs): what a job runs its shards with, and what an in-process sweep needs to share
        the jobs' cache and results."""
        data = self.settings.data
        return dataclasses.replace(profile, data_root=None if data is None else str(data),
                                   settings=self.settings)

    def setup(self) -> list[str]:
        """The shell lines that start a job (submitit's ``setup``): the code folder on
        PYTHONPATH, and the process variables exported as given (unset when not given), so
        a variable of the submitting shell or the node's never reaches the job by accident
        and the job's Python code never writes ``os.environ``."""
        given = dict(self.process_env)
        lines = [f"export PYTHONPATH={shlex.quote(str(self.code_dir))}"
                 "${PYTHONPATH:+:$PYTHONPATH}"]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in self.process_env]
        lines += [f"unset {key}" for key in PROCESS_ENVS if key not in given]
        return lines

    def as_dict(self) -> dict[str, Any]:
        """These settings as JSON-ready values (paths as text), for the manifest."""
        return {"settings": {k: None if v is None else str(v)
                             for k, v in dataclasses.asdict(self.settings).items()},
                "hub_dir": str(self.hub_dir), "code_dir": str(self.code_dir),
                "process_env": dict(self.process_env)}

    def shard_dir(self, profile_name: str) -> Path:
        return self.settings.results / profile_name / SHARD_FOLDER

    def table(self, profile_name: str, shard: Shard | str) -> Path:
        ident = shard.id if isinstance(shard, Shard) else shard
        return self.shard_dir(profile_name) / f"{ident}.csv"


# ============================================================================ the job


class ShardJob(submitit.helpers.Checkpointable):
    """The callable each job runs: ``ShardJob(profile, settings, runner)(shards)``.

    ``runner(profile, models, datasets, table=..., **call)`` runs one sweep call of a shard
    (the book's :func:`slimlib.book.runs.sweep_for`); it must be a module-level function so
    the job can be pickled. ``profile`` is taken with ``settings`` once, here
    (:meth:`JobSettings.for_profile`).

    Runs the shards one after the other (a shard that raises does not stop the others; the
    job raises at the end, naming the failed shards). On preemption or time-out submitit
    calls :meth:`checkpoint`, which counts the requeue and resubmits the same shards; they
    resume from the rows already in their tables.
    """

    def __init__(self, profile: Any, settings: JobSettings, runner: Callable[..., Any], *,
                 watch: tuple[int, str] | None = None) -> None:
        if not isinstance(settings, JobSettings):
            raise TypeError("settings must be a JobSettings: wrap the Settings of your entry "
                            "point with slimlib.scale.JobSettings.resolve(settings) and pass it")
        self.profile = settings.for_profile(profile)
        self.settings = settings
        self.runner = runner
        self.watch = watch

    def __call__(self, shards: Sequence[Shard]) -> dict[str, int]:
        """The job process's entry point: runs ``shards`` with torch hub's folder set to
        :attr:`JobSettings.hub_dir` (the process variables came with the job's environment,
        :meth:`JobSettings.setup`)."""
        import torch

        if self.watch is not None:
            watch_process(*self.watch)
        rows: dict[str, int] = {}
        failed: dict[str, str] = {}
        profile = self.profile
        hub = torch.hub.get_dir()
        torch.hub.set_dir(str(self.settings.hub_dir))
        try:
            for shard in shards:
                expected = self.settings.table(profile.name, shard)
                actual = profile.results_path(f"{SHARD_FOLDER}/{shard.id}.csv")
                if actual != expected:  # pragma: no cover - a guard on the path settings
                    raise RuntimeError(f"shard table {actual} is not the planned {expected}")
                start = time.perf_counter()
                print(f"shard {shard.id}: {len(shard.calls)} sweep call(s) -> {expected}",
                      flush=True)
                try:
                    rows[shard.id] = len(shard.run(profile, self.runner))
                except Exception:  # noqa: BLE001 - reported per shard, raised below
                    failed[shard.id] = traceback.format_exc()
                    print(f"shard {shard.id} FAILED:\n{failed[shard.id]}", file=sys.stderr,
                          flush=True)
                    continue
                print(f"shard {shard.id}: {rows[shard.id]} rows in "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
        finally:
            torch.hub.set_dir(hub)
        if failed:
            raise RuntimeError(f"{len(failed)} shard(s) failed: {sorted(failed)}; first:\n"
                               + next(iter(failed.values())))
        return rows

    def checkpoint(self, shards: Sequence[Shard]) -> submitit.helpers.DelayedSubmission:
        for shard in shards:
            counter = self.settings.table(self.profile.name, shard).with_suffix(".requeues")
            n = int(counter.read_text()) if counter.is_file() else 0
            counter.write_text(str(n + 1))
        return super().checkpoint(shards)


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it; raise
    ``PermissionError`` naming it (and what to do) otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from tempfile import TemporaryFile

        with TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write the results folder {folder} ({err.strerror or err}); "
                              "pass --results (or $SLIMLIB_RESULTS) a folder you can write") \
            from None
    return folder


# ============================================================================ submission


def manifest_path(settings: JobSettings, profile_name: str) -> Path:
    """``<settings.results>/<profile>/shards/manifest.json``."""
    return settings.shard_dir(profile_name) / "manifest.json"


def _minutes(time_limit: str | int) -> int:
    if isinstance(time_limit, int):
        return time_limit
    parts = str(time_limit).split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"time must be HH:MM (or minutes); got {time_limit!r}")
    nums = [int(p) for p in parts]
    return nums[0] * 60 + nums[1] if len(nums) >= 2 else nums[0]


def submit(profile: Any, shards: Sequence[Shard], *, runner: Callable[..., Any],
           executor: str = "slurm",
           settings: JobSettings, partition: str | None = None,
           gpus_per_job: int = 0, cpus_per_job: int = 1, mem_gb: float | None = None,
           time_limit: str | int = "04:00", array_parallelism: int | None = None,
           account: str | None = None, qos: str | None = None,
           watch_pid: int | None = None) -> list[JobRecord]:
    """Submit ``shards`` and record them in the manifest; returns one record per job.

    ``executor="slurm"``: one array task per shard (``array_parallelism`` at a time).
    ``executor="local"``: ``array_parallelism`` worker processes (default 1) on this machine,
    each running its share of the shards in turn. ``time_limit`` (``"HH:MM"``) is each job's
    limit; a job that reaches it is requeued and resumes. ``watch_pid`` (``"local"`` only):
    the workers stop (SIGKILL) once that process ends, e.g. the CLI that follows them
    (``--wait``), so none is left running unfollowed after the CLI is killed. ``runner`` runs
    each sweep call of a shard (see :class:`ShardJob`). Every argument
    is checked, and the results folder is checked writable, before anything is created.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}; got {executor!r}")
    if not callable(runner):
        raise TypeError(f"runner must be a function runner(profile, models, datasets, table=..., "
                        f"**call); got {runner!r}")
    if not shards:
        raise ValueError("no shards to submit (the book's plan: slimlib.book.sweep_plan.plan)")
    ids = [s.id for s in shards]
    if len(set(ids)) != len(ids):
        raise ValueError(f"shard ids must be unique; got {ids}")
    for name, value in (("gpus_per_job", gpus_per_job), ("cpus_per_job", cpus_per_job)):
        check_int(value, name, low=0)
    if not isinstance(settings, JobSettings):
        raise TypeError("settings must be a JobSettings: wrap the Settings of your entry point "
                        "with slimlib.scale.JobSettings.resolve(settings) and pass it")
    if array_parallelism is not None:
        check_int(array_parallelism, "array_parallelism", low=1)
    minutes = _minutes(time_limit)
    if minutes < 1:
        raise ValueError(f"time limit must be at least 1 minute; got {time_limit!r}")
    watch = None
    if watch_pid is not None:
        if executor != "local":
            raise ValueError("watch_pid is for executor='local' (SLURM jobs outlive the CLI)")
        start = process_start(watch_pid)
        if start is None:
            raise ValueError(f"watch_pid {watch_pid} is not a running process")
        watch = (int(watch_pid), start)
    job = ShardJob(profile, settings, runner, watch=watch)
    profile = job.profile  # with the settings: what the jobs run, what the manifest records
    folder = check_writable(settings.shard_dir(profile.name)) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    setup = [*settings.setup(), f"export OMP_NUM_THREADS={max(cpus_per_job, 1)}"]
    # SLURM expands %j in the job script; a local job's controller would create the literal
    # "%j" folder, so local jobs keep their files (named by job id) in logs/ itself
    ex = submitit.AutoExecutor(folder=folder / "%j" if executor == "slurm" else folder,
                               cluster=executor)
    params: dict[str, Any] = {"name": f"slimlib-{profile.name}", "timeout_min": minutes,
                              "cpus_per_task": max(cpus_per_job, 1), f"{executor}_setup": setup}
    if gpus_per_job:
        params["gpus_per_node"] = gpus_per_job
    if mem_gb is not None:
        params["mem_gb"] = mem_gb
    if executor == "slurm":
        params.update({k: v for k, v in (("slurm_partition", partition),
                                         ("slurm_account", account), ("slurm_qos", qos),
                                         ("slurm_array_parallelism", array_parallelism))
                       if v is not None})
        groups = [[s] for s in shards]
    else:
        workers = min(array_parallelism or 1, len(shards))
        groups = [list(shards[i::workers]) for i in range(workers)]
    ex.update_parameters(**params)
    try:
        jobs = ex.map_array(job, groups)
        records = [JobRecord(j.job_id, executor, str(folder), tuple(s.id for s in g),
                             tuple(str(settings.table(profile.name, s)) for s in g),
                             str(j.paths.stdout), str(j.paths.stderr),
                             str(j.paths.result_pickle))
                   for j, g in zip(jobs, groups, strict=True)]
    finally:
        # submitit creates the unexpanded folder name (also when reading a job's paths); the
        # jobs' own folders carry their real ids
        with contextlib.suppress(OSError):
            (folder / "%j").rmdir()
    _record(profile, settings, shards, records)
    return records


def _record(profile: Any, settings: JobSettings, shards: Sequence[Shard],
            records: list[JobRecord]) -> None:
    path = manifest_path(settings, profile.name)
    manifest = load_manifest(settings, profile.name) if path.is_file() else {
        "profile": profile.name, "shards": {}, "submissions": []}
    manifest["settings"] = settings.as_dict()
    manifest["profile_settings"] = profile.as_dict()
    for shard in shards:
        manifest["shards"][shard.id] = {**shard.as_dict(),
                                        "table": str(settings.table(profile.name, shard))}
    manifest["submissions"].append({"submitted_at": datetime.now(UTC).isoformat(),
                                    "jobs": [dataclasses.asdict(r) for r in records]})
    from slimlib._io import atomic_write

    atomic_write(path, json.dumps(manifest, indent=1, default=list) + "\n")


def load_manifest(settings: JobSettings, profile_name: str) -> dict[str, Any]:
    """The manifest of the submissions of ``profile_name`` under ``settings.settings.results``."""
    path = manifest_path(settings, profile_name)
    if not path.is_file():
        raise FileNotFoundError(f"no submission recorded at {path}: submit first with "
                                f"`python -m slimlib sweep --profile {profile_name} --executor "
                                "slurm|local` (same --results folder)")
    return json.loads(path.read_text(encoding="utf-8"))


def latest_jobs(settings: JobSettings, profile_name: str) -> list[JobRecord]:
    """The newest job of every shard in the manifest (a resubmission supersedes earlier
    jobs of the same shards)."""
    manifest = load_manifest(settings, profile_name)
    latest: dict[str, JobRecord] = {}
    for sub in manifest["submissions"]:
        for job in sub["jobs"]:
            record = JobRecord(**{**job, "shards": tuple(job["shards"]),
                                  "tables": tuple(job["tables"])})
            for shard in record.shards:
                latest[shard] = record
    return list({r.job_id: r for r in latest.values()}.values())


def merge_results(settings: JobSettings, profile_name: str, *, table: str = "sweep.csv"):
    """Merge every shard table of the manifest into ``<results>/<profile>/<table>``."""
    manifest = load_manifest(settings, profile_name)
    tables = [info["table"] for info in manifest["shards"].values()]
    return merge(tables, settings.settings.results / profile_name / table)
