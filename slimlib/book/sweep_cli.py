"""``python -m slimlib sweep``: plan, submit, follow and merge a profile's sharded sweep.

::

    python -m slimlib sweep --profile paper --executor slurm --partition gpu --gpus-per-job 1 \\
        --cpus-per-job 8 --mem 48 --time 04:00 --wait
    python -m slimlib sweep --profile paper --status     # later: state of every job
    python -m slimlib sweep --profile paper --merge      # later: build results/paper/sweep.csv

Paths (``--data-root``, ``--cache``, ``--results``, ``--hub-dir``) default to ``$SLIMLIB_DATA``,
``$SLIMLIB_CACHE``, ``$SLIMLIB_RESULTS`` and torch's hub folder. This is the entry point: it
builds one :class:`slimlib.settings.Settings` from the flags and the environment, once
(:meth:`~slimlib.settings.Settings.from_env`), resolves the profile with it and hands the same
object, wrapped in a :class:`slimlib.scale.JobSettings`, to every job.

Exit status: 0 done; 1 a job failed; 2 a usage error (one line on stderr: unknown profile,
model or dataset, a width outside (0, 1], a model that fits none of the datasets, nothing to
merge, an unwritable results folder, a merge conflict; checked before anything is submitted);
130 interrupted (Ctrl-C or SIGTERM while following: local workers are stopped, the rows kept
are counted, and rerunning the same command resumes from them).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_parser", "main", "DeprecatedAlias"]


class DeprecatedAlias(argparse.Action):
    """An old option name kept as an alias of ``new``: stores like it and warns on stderr."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"warning: {option_string} is deprecated; use {self.new} (same meaning)",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to an ``argparse`` subparsers object."""
    p = sub.add_parser("sweep", help="run a profile's sweep as shards (SLURM array / local)",
                       description=__doc__.split("\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--profile", default=None, help="run profile (None: $SLIMLIB_PROFILE or "
                   "'default')")
    p.add_argument("--models", nargs="+", default=None, help="only these models")
    p.add_argument("--datasets", nargs="+", default=None, help="only these datasets")
    p.add_argument("--widths", nargs="+", type=float, default=None,
                   help="override the profile's widths (build the book with the same override)")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="override the profile's seeds")
    p.add_argument("--main-only", action="store_true",
                   help="only the main curves of --models x --datasets, not every chapter's rows")
    p.add_argument("--max-widths", type=int, default=None,
                   help="split each shard into chunks of at most this many widths")
    p.add_argument("--executor", choices=("slurm", "local"), default=None,
                   help="submit the shards to SLURM or run them as local processes")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per job")
    p.add_argument("--cpus-per-job", type=int, default=1, help="CPU cores per job")
    p.add_argument("--mem", type=float, default=None, help="memory per job in GB")
    p.add_argument("--time", default="04:00", help="time limit per job, HH:MM")
    p.add_argument("--array-parallelism", type=int, default=None,
                   help="SLURM: array tasks at a time; local: worker processes (None: 1)")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--qos", default=None, help="SLURM quality of service")
    p.add_argument("--wait", action="store_true",
                   help="follow the jobs, print a summary and merge when all have ended")
    p.add_argument("--status", action="store_true", help="state of the last submission's jobs")
    p.add_argument("--merge", action="store_true", help="merge the shard tables into sweep.csv")
    p.add_argument("--plan", action="store_true", help="print the shards, submit nothing")
    p.add_argument("--data-root", default=None, help="data root (None: $SLIMLIB_DATA)")
    p.add_argument("--cache", default=None,
                   help="feature/checkpoint cache (None: $SLIMLIB_CACHE)")
    p.add_argument("--results", default=None, help="results folder (None: $SLIMLIB_RESULTS)")
    p.add_argument("--hub-dir", default=None,
                   help="torch hub folder holding checkpoints/ (None: torch's own)")
    p.add_argument("--weights", dest="hub_dir", action=DeprecatedAlias, new="--hub-dir",
                   help="deprecated alias of --hub-dir")
    p.add_argument("--poll", type=float, default=3.0, help="seconds between status checks")
    return p


#: Errors that are the user's to fix (bad names, values, paths): one line, exit status 2.
_USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(args: argparse.Namespace) -> int:
    """Run the ``sweep`` subcommand; returns the exit status (0 done, 1 a job failed, 2 a
    usage error, printed as one line, 130 interrupted)."""
    import signal

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(args)
    except _USAGE_ERRORS as err:
        print(f"slimlib sweep: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slimlib sweep: interrupted before any job was followed; rerun the same "
              "command (finished rows are kept and reused)", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    from slimlib.book import profiles
    from slimlib.book.sweep_plan import AUTO, check_names, plan

    actions = sum(bool(a) for a in (args.executor, args.status, args.merge, args.plan))
    if actions != 1:
        raise ValueError("give exactly one of --executor slurm|local, --status, --merge, --plan")
    if args.wait and not args.executor:
        raise ValueError("--wait follows a submission: use it with --executor slurm|local")
    if args.poll <= 0:
        raise ValueError(f"--poll must be a positive number of seconds; got {args.poll}")
    from slimlib.scale import JobSettings
    from slimlib.settings import Settings

    name = profiles.get(args.profile).name  # the entry point: $SLIMLIB_PROFILE read here
    check_names(models=args.models or (), datasets=args.datasets or ())
    # the one Settings of this command (a missing data root is a one-line usage error)
    settings = Settings.from_env(data=args.data_root, cache=args.cache, results=args.results)
    job = JobSettings.resolve(settings, hub_dir=args.hub_dir)  # + hub, code, HF_HOME, offline
    if args.status or args.merge:
        return _follow(job, name, merge_only=args.merge)
    # the profile's default datasets depend on the data root: resolved with the same settings
    profile = job.for_profile(profiles.resolve(name, widths=args.widths, seeds=args.seeds,
                                               settings=settings))
    ablation, note = AUTO, ""
    if args.plan and not args.main_only:
        # chapter 7's pair is the one with the most test images, which needs the data; a dry
        # run without the data prints the rest of the plan and says what is missing
        from slimlib.book.sweep_plan import ablation_model

        try:
            ablation = ablation_model(profile)
        except FileNotFoundError as err:
            ablation = None
            note = ("not planned: chapter 7's ablation calls (their model x dataset is the pair "
                    "with the most test images, known once the data is on disk: "
                    f"{_one_line(err)})")
    shards = plan(profile, models=args.models, datasets=args.datasets,
                  book=not args.main_only, max_widths=args.max_widths, ablation=ablation)
    if args.plan:
        for shard in shards:
            calls = "; ".join(f"{c.order}/{'+'.join(c.parts)} "
                              f"{len(c.widths or profile.widths)} widths" for c in shard.calls)
            print(f"{shard.id}: {shard.model} x {shard.dataset}: {calls}")
        print(f"{len(shards)} shard(s) -> {job.shard_dir(name)}")
        if note:
            print(note)
        return 0
    from slimlib import scale as cluster
    from slimlib.book.runs import sweep_for

    records = cluster.submit(
        profile, shards, runner=sweep_for, executor=args.executor, settings=job,
        partition=args.partition,
        gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job, mem_gb=args.mem,
        time_limit=args.time, array_parallelism=args.array_parallelism, account=args.account,
        qos=args.qos,
        # local workers followed by this process stop when it ends (Ctrl-C, kill -9)
        watch_pid=os.getpid() if args.wait and args.executor == "local" else None)
    ids = sorted({r.job_id.split("_")[0] for r in records})
    print(f"submitted {len(shards)} shard(s) as {len(records)} {args.executor} job(s): "
          f"{', '.join(ids)}", flush=True)
    print(f"manifest: {cluster.manifest_path(job, name)}", flush=True)
    if not args.wait:
        print(f"follow with: python -m slimlib sweep --profile {name} --status; then --merge")
        return 0
    try:
        states = cluster.wait(records, poll_s=args.poll)
    except KeyboardInterrupt:
        return _interrupted(records, name)
    print(cluster.summary(states))
    merged = cluster.merge_results(job, name)
    print(f"merged {len(merged)} rows -> {merged.attrs['path']}")
    return int(any(s["state"] in ("failed", "cancelled") for s in states))


def _interrupted(records: Any, name: str) -> int:
    """Ctrl-C (or SIGTERM) while following: stop the local workers, count the rows kept."""
    import signal

    from slimlib import scale as cluster

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    stopped = cluster.stop_local(records)
    rows = sum(s["rows"] for s in cluster.status(records))
    slurm = sorted({r.job_id.split("_")[0] for r in records if r.executor == "slurm"})
    where = (f"stopped {stopped} local worker(s)" if not slurm else
             f"the SLURM job(s) {', '.join(slurm)} keep running (scancel them to stop; "
             f"follow with --profile {name} --status, then --merge)")
    print(f"\nslimlib sweep: interrupted; {where}; {rows} rows kept; rerun to resume",
          file=sys.stderr)
    return 130


def _follow(job: Any, name: str, *, merge_only: bool) -> int:
    from slimlib import scale as cluster

    records = cluster.latest_jobs(job, name)
    states = cluster.status(records)
    if not merge_only:
        for s in states:
            print(f"{s['job_id']}: {s['state']:8s} rows={s['rows']} requeues={s['requeues']} "
                  f"shards={','.join(s['shards'])}" + (f"  {s['error']}" if s["error"] else ""))
        print(cluster.summary(states))
        return int(any(s["state"] in ("failed", "cancelled") for s in states))
    running = [s for s in states if s["state"] in ("running", "pending")]
    if running:
        print(f"note: {len(running)} job(s) still running; merging the rows landed so far")
    cluster.check_writable(job.settings.results / name)
    merged = cluster.merge_results(job, name)
    print(f"merged {len(merged)} rows ({merged.attrs['n_duplicates']} identical duplicates "
          f"collapsed) -> {merged.attrs['path']}")
    return 0
