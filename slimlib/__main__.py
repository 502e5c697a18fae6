"""Command line: ``python -m slimlib run notebooks/03_rs.py -p models '["rs-mae-tiny"]'``.

Subcommands:

* ``run CHAPTER [-p NAME VALUE]... [--out runs]``: execute a chapter with papermill
  (values parsed as JSON, then YAML); prints the executed notebook's path.
* ``chapters [--folder notebooks]``: list the chapters and their parameters.
* ``profiles``: list the run profiles.
* ``sweep --profile P --executor slurm|local [--wait]`` / ``--status`` / ``--merge``: run a
  profile's sweep as shards through submitit (see ``docs/cluster.md``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m slimlib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a chapter with papermill")
    run.add_argument("chapter", help="path to notebooks/NN_name.py")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="override a parameter (JSON/YAML value)")
    run.add_argument("--out", default="runs", help="output folder (default: runs)")
    run.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    run.add_argument("--progress", action="store_true", help="show a cell progress bar")
    chapters = sub.add_parser("chapters", help="list chapters and their parameters")
    chapters.add_argument("--folder", default="notebooks")
    sub.add_parser("profiles", help="list run profiles")
    from slimlib import sweep_cli

    sweep_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from slimlib.chapters import parse_value, run_chapter

        params = {name: parse_value(value) for name, value in args.parameter}
        out = run_chapter(args.chapter, params, args.out, timeout=args.timeout,
                          progress=args.progress)
        print(out)
    elif args.command == "chapters":
        from slimlib.chapters import chapter_parameters, list_chapters

        for path in list_chapters(args.folder):
            print(f"{path}: {', '.join(chapter_parameters(path))}")
    elif args.command == "profiles":
        from slimlib.profiles import PROFILES

        for name, prof in PROFILES.items():
            print(f"{name}: models={list(prof.models)} widths={len(prof.widths)} "
                  f"seeds={list(prof.seeds)} protocols={list(prof.protocols)}")
    elif args.command == "sweep":
        from slimlib import sweep_cli

        return sweep_cli.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
