"""Submitted shard jobs (:class:`JobRecord`) and their state without ``sacct``: result files,
job logs, ``squeue`` and pids; and the local worker processes' lifetime
(:func:`watch_process`, :func:`stop_local`).

:mod:`slimlib.scale._submit` makes the records (and imports :class:`JobRecord`,
:func:`watch_process` and :func:`process_start` from here); this module imports nothing of it.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JobRecord", "status", "wait", "summary", "process_start", "watch_process",
           "stop_local"]


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


_TERMINAL = ("done", "failed", "cancelled")
#: What ``slurmstepd`` writes to a job's stderr when ``scancel`` stops it (a time limit or a
#: preemption adds "DUE TO ...": submitit requeues those, so they are not a cancellation).
_CANCELLED = re.compile(r"\*\*\* JOB \S+ ON \S+ CANCELLED AT (\S+) \*\*\*")


def _queue_states(executor: str) -> dict[str, str]:
    if executor != "slurm":
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22; with the pid it
    names one process even after the pid is reused), ``None`` when it has ended."""
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def watch_process(pid: int, start: str, poll_s: float = 0.5) -> None:
    """Inside a local worker: a daemon thread that kills this worker (SIGKILL, so submitit
    neither requeues nor writes a result) once the process ``(pid, start)``, the sweep CLI
    that follows the workers, has ended, even by ``kill -9``. The rows written so far stay in
    the shard tables; rerunning the CLI resumes from them."""

    def watch() -> None:
        while process_start(pid) == start:
            time.sleep(poll_s)
        print(f"the sweep CLI (pid {pid}) that followed this worker has ended: stopping; the "
              "rows written so far are kept, rerun the sweep to resume", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="slimlib-watch-cli", daemon=True).start()


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid``, deepest first."""
    out: list[int] = []
    todo = [int(pid)]
    while todo:
        current = todo.pop()
        try:
            kids = [int(c) for t in Path(f"/proc/{current}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            kids = []
        out += kids
        todo += kids
    return out[::-1]


def stop_local(records: Sequence[JobRecord], *, timeout_s: float = 30.0) -> int:
    """Kill the local jobs of ``records`` (each worker, its submitit controller and shell;
    SIGKILL, so nothing is requeued) and wait until they have ended. Rows already written stay
    in the shard tables (a partly written last line is dropped on resume). Returns how many
    jobs were still running. SLURM records are left alone (``scancel`` them)."""
    alive = [r for r in records if r.executor == "local" and process_start(int(r.job_id))]
    for rec in alive:
        for pid in [*_descendants(int(rec.job_id)), int(rec.job_id)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while any(process_start(int(r.job_id)) for r in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(alive)


def status(records: Sequence[JobRecord]) -> list[dict[str, Any]]:
    """State of each job: ``done``, ``failed``, ``cancelled``, ``running`` or ``pending``
    (plus the SLURM state, requeue count, rows landed in its shard tables and the error's last
    line).

    A job is ``done``/``failed`` once submitit wrote its result file; a SLURM job that
    ``scancel`` stopped is ``cancelled`` at once (from the line ``slurmstepd`` writes to its
    log, also while SLURM still lists it as ``COMPLETING``); a job without a result that is no
    longer queued (killed, node lost) or a local worker that has ended is ``failed``. No
    ``sacct`` needed.
    """
    queues = {ex: _queue_states(ex) for ex in {r.executor for r in records}}
    out = []
    for rec in records:
        tables = [Path(t) for t in rec.tables]
        info: dict[str, Any] = {"job_id": rec.job_id, "shards": list(rec.shards),
                                "log": rec.stderr, "rows": sum(_rows(t) for t in tables),
                                "requeues": sum(_requeues(t) for t in tables), "error": ""}
        result = Path(rec.result)
        if result.is_file():
            try:
                with result.open("rb") as f:
                    outcome, payload = pickle.load(f)
            except (OSError, EOFError, pickle.UnpicklingError, ValueError):
                outcome, payload = "pending", ""  # being written right now
            info["state"] = "done" if outcome == "success" else (
                "failed" if outcome == "error" else "running")
            if outcome == "error":
                info["error"] = str(payload).strip().splitlines()[-1]
        elif rec.executor == "slurm":
            queued = queues["slurm"].get(rec.job_id)
            info["slurm"] = queued or "not in queue"
            info["state"] = ("pending" if queued in ("PENDING", "REQUEUED", "CONFIGURING")
                             else "running" if queued in ("RUNNING", "COMPLETING")
                             else "failed")
            cancelled = None if queued in ("PENDING", "RUNNING") else _cancelled_at(rec.stderr)
            if cancelled:  # scancel: also while SLURM still lists it as COMPLETING
                info["state"] = "cancelled"
                info["error"] = (f"cancelled at {cancelled} (scancel); resubmit to resume from "
                                 "its rows")
            elif info["state"] == "failed":
                info["error"] = f"no result and {queued or 'no longer queued'} (cancelled, " \
                                "killed or out of memory; see the log)"
        else:
            info["state"] = "running" if process_start(int(rec.job_id)) else "failed"
            if info["state"] == "failed":
                info["error"] = "the worker process ended without a result; see the log"
        out.append(info)
    return out


def _cancelled_at(log: str) -> str | None:
    """When ``scancel`` stopped the job whose stderr is ``log`` (its last 64 kB), else
    ``None``."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - 65536, 0))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = _CANCELLED.findall(tail)
    return found[-1] if found else None


def _rows(table: Path) -> int:
    try:
        with table.open("rb") as f:
            return max(sum(1 for _ in f) - 1, 0)
    except OSError:
        return 0


def _requeues(table: Path) -> int:
    counter = table.with_suffix(".requeues")
    try:
        return int(counter.read_text())
    except (OSError, ValueError):
        return 0


def wait(records: Sequence[JobRecord], *, poll_s: float = 3.0, progress: bool = True,
         timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Poll :func:`status` until every job is done, failed or cancelled (tqdm bar over
    jobs)."""
    from tqdm.auto import tqdm

    start = time.monotonic()
    bar = tqdm(total=len(records), desc="shard jobs", unit="job", disable=not progress)
    try:
        while True:
            states = status(records)
            finished = sum(s["state"] in _TERMINAL for s in states)
            bar.set_postfix(rows=sum(s["rows"] for s in states),
                            failed=sum(s["state"] == "failed" for s in states), refresh=False)
            bar.update(finished - bar.n)
            if finished == len(records):
                return states
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{len(records) - finished} job(s) still running after "
                                   f"{timeout_s:.0f} s; check later with --status")
            time.sleep(poll_s)
    finally:
        bar.close()


def summary(states: Sequence[Mapping[str, Any]]) -> str:
    """Done / failed / requeued counts and, per failed job, its shards, error and log path."""
    count = {k: sum(s["state"] == k for s in states) for k in ("done", "failed", "cancelled",
                                                                "running", "pending")}
    requeued = sum(s["requeues"] > 0 for s in states)
    lines = [f"jobs: {count['done']} done, {count['failed']} failed, {requeued} requeued"
             + (f", {count['cancelled']} cancelled" if count["cancelled"] else "")
             + (f", {count['running']} running, {count['pending']} pending"
                if count["running"] or count["pending"] else "")
             + f"; {sum(s['rows'] for s in states)} rows in the shard tables"]
    for s in states:
        if s["state"] in ("failed", "cancelled"):
            lines.append(f"  {s['state'].upper()} job {s['job_id']} (shards "
                         f"{', '.join(s['shards'])}): {s['error']}\n    log: {s['log']}")
    return "\n".join(lines)


