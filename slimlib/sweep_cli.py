"""``python -m slimlib sweep``: plan, submit, follow and merge a profile's sharded sweep.

::

    python -m slimlib sweep --profile paper --executor slurm --partition gpu --gpus-per-job 1 \\
        --cpus-per-job 8 --mem 48 --time 04:00 --wait
    python -m slimlib sweep --profile paper --status     # later: state of every job
    python -m slimlib sweep --profile paper --merge      # later: build results/paper/sweep.csv

Paths (``--data-root``, ``--cache``, ``--results``, ``--weights``) default to ``$SLIMLIB_DATA``,
``$SLIMLIB_CACHE``, ``$SLIMLIB_RESULTS`` and torch's hub folder, read here, at the entry point,
and passed to every job explicitly.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to an ``argparse`` subparsers object."""
    p = sub.add_parser("sweep", help="run a profile's sweep as shards (SLURM array / local)",
                       description=__doc__.split("\n")[0])
    p.add_argument("--profile", default=None, help="run profile (default $SLIMLIB_PROFILE or "
                   "'default')")
    p.add_argument("--models", nargs="+", default=None, help="only these models")
    p.add_argument("--datasets", nargs="+", default=None, help="only these datasets")
    p.add_argument("--widths", nargs="+", type=float, default=None,
                   help="override the profile's widths (build the book with the same override)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="override the seeds")
    p.add_argument("--main-only", action="store_true",
                   help="only the main curves of --models x --datasets, not every chapter's rows")
    p.add_argument("--max-widths", type=int, default=None,
                   help="split each shard into chunks of at most this many widths")
    p.add_argument("--executor", choices=("slurm", "local"), default=None)
    p.add_argument("--partition", default=None)
    p.add_argument("--gpus-per-job", type=int, default=0)
    p.add_argument("--cpus-per-job", type=int, default=1)
    p.add_argument("--mem", type=float, default=None, help="memory per job in GB")
    p.add_argument("--time", default="04:00", help="time limit per job, HH:MM")
    p.add_argument("--array-parallelism", type=int, default=None,
                   help="SLURM: array tasks at a time; local: worker processes (default 1)")
    p.add_argument("--account", default=None)
    p.add_argument("--qos", default=None)
    p.add_argument("--wait", action="store_true",
                   help="follow the jobs, print a summary and merge when all have ended")
    p.add_argument("--status", action="store_true", help="state of the last submission's jobs")
    p.add_argument("--merge", action="store_true", help="merge the shard tables into sweep.csv")
    p.add_argument("--plan", action="store_true", help="print the shards, submit nothing")
    p.add_argument("--data-root", default=None, help="data root (default $SLIMLIB_DATA)")
    p.add_argument("--cache", default=None, help="feature/checkpoint cache ($SLIMLIB_CACHE)")
    p.add_argument("--results", default=None, help="results folder ($SLIMLIB_RESULTS)")
    p.add_argument("--weights", default=None, help="torch hub folder holding checkpoints/")
    p.add_argument("--poll", type=float, default=3.0, help="seconds between status checks")
    return p


def main(args: argparse.Namespace) -> int:
    """Run the ``sweep`` subcommand; returns the exit status (1 when a job failed)."""
    from slimlib import profiles
    from slimlib.shards import plan

    actions = sum(bool(a) for a in (args.executor, args.status, args.merge, args.plan))
    if actions != 1:
        raise SystemExit("sweep: give exactly one of --executor slurm|local, --status, --merge, "
                         "--plan")
    from slimlib.cluster import JobSettings

    settings = JobSettings.resolve(data_root=args.data_root, cache_dir=args.cache,
                                   results_dir=args.results, hub_dir=args.weights)
    name = profiles.get(args.profile).name
    if args.status or args.merge:
        return _follow(settings, name, merge_only=args.merge)
    # the profile's default datasets depend on the data root: the job settings, explicitly
    profile = profiles.resolve(name, widths=args.widths, seeds=args.seeds,
                               data_root=settings.data_root, settings=settings.settings())
    shards = plan(profile, models=args.models, datasets=args.datasets,
                  book=not args.main_only, max_widths=args.max_widths)
    if args.plan:
        for shard in shards:
            calls = "; ".join(f"{c.order}/{'+'.join(c.parts)} "
                              f"{len(c.widths or profile.widths)} widths" for c in shard.calls)
            print(f"{shard.id}: {shard.model} x {shard.dataset}: {calls}")
        print(f"{len(shards)} shard(s) -> {settings.shard_dir(name)}")
        return 0
    from slimlib import cluster

    records = cluster.submit(
        profile, shards, executor=args.executor, settings=settings, partition=args.partition,
        gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job, mem_gb=args.mem,
        time_limit=args.time, array_parallelism=args.array_parallelism, account=args.account,
        qos=args.qos)
    ids = sorted({r.job_id.split("_")[0] for r in records})
    print(f"submitted {len(shards)} shard(s) as {len(records)} {args.executor} job(s): "
          f"{', '.join(ids)}")
    print(f"manifest: {cluster.manifest_path(settings, name)}")
    if not args.wait:
        print(f"follow with: python -m slimlib sweep --profile {name} --status; then --merge")
        return 0
    states = cluster.wait(records, poll_s=args.poll)
    print(cluster.summary(states))
    merged = cluster.merge_results(settings, name)
    print(f"merged {len(merged)} rows -> {merged.attrs['path']}")
    return int(any(s["state"] == "failed" for s in states))


def _follow(settings: Any, name: str, *, merge_only: bool) -> int:
    from slimlib import cluster

    records = cluster.latest_jobs(settings, name)
    states = cluster.status(records)
    if not merge_only:
        for s in states:
            print(f"{s['job_id']}: {s['state']:8s} rows={s['rows']} requeues={s['requeues']} "
                  f"shards={','.join(s['shards'])}" + (f"  {s['error']}" if s["error"] else ""))
        print(cluster.summary(states))
        return int(any(s["state"] == "failed" for s in states))
    running = [s for s in states if s["state"] not in ("done", "failed")]
    if running:
        print(f"note: {len(running)} job(s) still running; merging the rows landed so far")
    merged = cluster.merge_results(settings, name)
    print(f"merged {len(merged)} rows ({merged.attrs['n_duplicates']} identical duplicates "
          f"collapsed) -> {merged.attrs['path']}")
    return 0
