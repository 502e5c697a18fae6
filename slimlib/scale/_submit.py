"""Run a sweep's shards as SLURM job arrays (or local processes) through submitit.

:func:`submit` sends :class:`slimlib.scale._shards.Shard` s to a submitit executor (``"slurm"``: one
array task per shard; ``"local"``: worker processes on this machine) and records the
submission in ``results/<profile>/shards/manifest.json``; :func:`status`, :func:`wait` and
:func:`merge_results` finish the job later, from that manifest. Every path a job uses is a
field of :class:`JobSettings` (resolved once, at the submitting entry point), pickled into the
submitted callable and passed inside the job to the shards as an explicit
:class:`slimlib.settings.Settings` (``profile.settings``), so nothing depends on the
environment of the shell that submitted it or of the node that runs it. A job that hits its
time limit or is preempted checkpoints through submitit's requeue mechanism
(:class:`ShardJob` is a ``submitit.helpers.Checkpointable``) and resumes from its finished rows.
See ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimlib._validation import check_int, require
from slimlib.scale._shards import SHARD_FOLDER, Shard, merge
from slimlib.scale._status import process_start, status, stop_local, summary, wait, watch_process

submitit = require("submitit", "scale")

__all__ = ["JobSettings", "ShardJob", "JobRecord", "submit", "status", "wait", "summary",
           "merge_results", "load_manifest", "latest_jobs", "manifest_path", "EXECUTORS",
           "stop_local", "check_writable", "process_start"]

EXECUTORS = ("slurm", "local")
#: Further settings copied from the submitting side's environment when set there: the first
#: three become fields of the job's :class:`slimlib.settings.Settings`; the others are read
#: by third-party hubs (and :func:`slimlib.settings.env_flag`) from the job's environment,
#: which :meth:`JobSettings.applied` sets (or clears) inside the job.
_SETTINGS_ENVS = ("GEO_BENCH_DIR", "IMAGENET_DIR", "SLIMLIB_WEIGHTS")
_PROCESS_ENVS = ("HF_HOME", "SLIMLIB_OFFLINE", "HF_HUB_OFFLINE")
_EXTRA_ENVS = _SETTINGS_ENVS + _PROCESS_ENVS


# ============================================================================ settings


@dataclass(frozen=True)
class JobSettings:
    """Every path a shard job reads or writes, as absolute paths.

    Attributes:
        data_root: data root of the datasets (``None``: no data root, synthetic fallback).
        cache_dir: feature cache and checkpoints (shared by all jobs).
        results_dir: result tables; shard tables land in ``<results_dir>/<profile>/shards/``.
        hub_dir: torch hub folder (pretrained weights under ``<hub_dir>/checkpoints/``).
        code_dir: folder holding the ``slimlib`` package the job imports (put on PYTHONPATH).
        env: further settings (``GEO_BENCH_DIR``, ``IMAGENET_DIR``, ``SLIMLIB_WEIGHTS``,
            ``HF_HOME``, offline flags) as pairs.
    """

    data_root: str | None
    cache_dir: str
    results_dir: str
    hub_dir: str
    code_dir: str
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def resolve(cls, *, data_root: str | os.PathLike | None = None,
                cache_dir: str | os.PathLike | None = None,
                results_dir: str | os.PathLike | None = None,
                hub_dir: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> JobSettings:
        """Settings from the arguments, else from ``environ`` (default ``os.environ``; call
        this at an entry point), else slimlib's defaults (:meth:`Settings.from_env`);
        relative paths become absolute."""
        import slimlib
        from slimlib.settings import CACHE_ENV, DATA_ENV, RESULTS_ENV, Settings

        env = dict(os.environ if environ is None else environ)
        for key, value in ((DATA_ENV, data_root), (CACHE_ENV, cache_dir),
                           (RESULTS_ENV, results_dir)):
            if value:
                env[key] = str(value)
        try:
            resolved = Settings.from_env(env)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err} (data root is not a folder: pass an existing "
                                    "--data-root, or none for the synthetic fallback)") from None
        data = None if resolved.data is None else str(resolved.data)
        cache, results = str(resolved.cache), str(resolved.results)
        if hub_dir is None and env.get("TORCH_HOME"):
            hub_dir = Path(env["TORCH_HOME"]) / "hub"
        if hub_dir is None:
            import torch

            hub_dir = torch.hub.get_dir()
        extra = tuple((k, env[k]) for k in _EXTRA_ENVS if env.get(k))
        code = str(Path(slimlib.__file__).resolve().parents[1])
        return cls(data, cache, results, str(Path(hub_dir).expanduser().resolve()), code, extra)

    def settings(self) -> Any:
        """These paths as the :class:`slimlib.settings.Settings` the job's library calls get."""
        from slimlib.settings import Settings

        extra = dict(self.env)

        def path(value: str | None) -> Path | None:
            return None if not value else Path(value)

        return Settings(data=path(self.data_root), cache=Path(self.cache_dir),
                        results=Path(self.results_dir), weights=path(extra.get("SLIMLIB_WEIGHTS")),
                        geobench=path(extra.get("GEO_BENCH_DIR")),
                        imagenet=path(extra.get("IMAGENET_DIR")))

    def for_profile(self, profile: Any) -> Any:
        """``profile`` with these settings (and data root): what a job runs its shards with,
        and what an in-process sweep needs to share the jobs' cache and results."""
        return dataclasses.replace(profile, data_root=self.data_root, settings=self.settings())

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside a job (its entry point): set (or remove) the third-party process settings
        (``HF_HOME``, offline flags) and torch hub's folder for the block. slimlib's own paths
        are not environment variables here: they travel as :meth:`settings`."""
        import torch

        wanted: dict[str, str | None] = {k: None for k in _PROCESS_ENVS}
        wanted.update({k: v for k, v in self.env if k in _PROCESS_ENVS})
        saved = {k: os.environ.get(k) for k in wanted}
        hub = torch.hub.get_dir()
        for key, value in wanted.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.hub.set_dir(self.hub_dir)
        try:
            yield
        finally:
            torch.hub.set_dir(hub)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def shard_dir(self, profile_name: str) -> Path:
        return Path(self.results_dir) / profile_name / SHARD_FOLDER

    def table(self, profile_name: str, shard: Shard | str) -> Path:
        ident = shard.id if isinstance(shard, Shard) else shard
        return self.shard_dir(profile_name) / f"{ident}.csv"


# ============================================================================ the job


class ShardJob(submitit.helpers.Checkpointable):
    """The callable each job runs: ``ShardJob(profile, settings, runner)(shards)``.

    ``runner(profile, models, datasets, table=..., **call)`` runs one sweep call of a shard
    (the book passes :func:`slimlib.book.runs.sweep_for`); it must be a module-level function
    so the job can be pickled.

    Runs the shards one after the other under ``settings`` (a shard that raises does not
    stop the others; the job raises at the end, naming the failed shards). On preemption or
    time-out submitit calls :meth:`checkpoint`, which counts the requeue and resubmits the
    same shards; they resume from the rows already in their tables.
    """

    def __init__(self, profile: Any, settings: JobSettings, runner: Callable[..., Any], *,
                 watch: tuple[int, str] | None = None) -> None:
        self.profile = profile
        self.settings = settings
        self.runner = runner
        self.watch = watch

    def __call__(self, shards: Sequence[Shard]) -> dict[str, int]:
        if self.watch is not None:
            watch_process(*self.watch)
        rows: dict[str, int] = {}
        failed: dict[str, str] = {}
        profile = self.settings.for_profile(self.profile)  # explicit settings for the shards
        with self.settings.applied():
            for shard in shards:
                expected = self.settings.table(self.profile.name, shard)
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


@dataclass(frozen=True)
class JobRecord:
    """One submitted job: its id, its shards and its log files."""

    job_id: str
    executor: str
    folder: str
    shards: tuple[str, ...]
    tables: tuple[str, ...]
    stdout: str
    stderr: str
    result: str


def manifest_path(settings: JobSettings, profile_name: str) -> Path:
    """``<results_dir>/<profile>/shards/manifest.json``."""
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
        raise TypeError("settings must be a JobSettings: resolve the paths at your entry point "
                        "with slimlib.scale.JobSettings.resolve(...) and pass them")
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
    profile = settings.for_profile(profile)
    folder = check_writable(settings.shard_dir(profile.name)) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    setup = [f"export PYTHONPATH={settings.code_dir}${{PYTHONPATH:+:$PYTHONPATH}}",
             f"export OMP_NUM_THREADS={max(cpus_per_job, 1)}"]
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
    job = ShardJob(profile, settings, runner, watch=watch)
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
    manifest["settings"] = dataclasses.asdict(settings)
    manifest["profile_settings"] = profile.as_dict()
    for shard in shards:
        manifest["shards"][shard.id] = {**shard.as_dict(),
                                        "table": str(settings.table(profile.name, shard))}
    manifest["submissions"].append({"submitted_at": datetime.now(UTC).isoformat(),
                                    "jobs": [dataclasses.asdict(r) for r in records]})
    from slimlib._io import atomic_write

    atomic_write(path, json.dumps(manifest, indent=1, default=list) + "\n")


def load_manifest(settings: JobSettings, profile_name: str) -> dict[str, Any]:
    """The manifest of the submissions of ``profile_name`` under ``settings.results_dir``."""
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
    return merge(tables, Path(settings.results_dir) / profile_name / table)
