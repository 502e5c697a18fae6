"""Command line: ``python -m slimlib run notebooks/03_rs.py -p models '["rs-mae-tiny"]'``.

Subcommands:

* ``run CHAPTER [-p NAME VALUE]... [--out runs]``: execute a chapter with papermill
  (values parsed as JSON, then YAML); prints the executed notebook's path.
* ``chapters [--folder notebooks]``: list the chapters and their parameters.
* ``profiles``: list the run profiles.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    elif args.command == "chapters":
        from slimlib.chapters import chapter_parameters, list_chapters

        for path in list_chapters(args.folder):
            print(f"{path}: {', '.join(chapter_parameters(path))}")
    elif args.command == "profiles":
        from slimlib.profiles import PROFILES

        for name, prof in PROFILES.items():
            print(f"{name}: models={list(prof.models)} widths={len(prof.widths)} "
                  f"seeds={list(prof.seeds)} protocols={list(prof.protocols)}")
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(args: argparse.Namespace) -> int:
    """``run``: 0 when every cell finished; 2 for bad parameters (no kernel started); 1 when a
    cell failed or timed out; 130 when interrupted (Ctrl-C or SIGTERM). Unfinished runs
    leave a notebook marked failed (``….failed.ipynb`` / ``….interrupted.ipynb``)."""
    import signal

    from slimlib.chapters import parse_value, run_chapter

    try:
        params = {name: parse_value(value) for name, value in args.parameter}
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        out = run_chapter(args.chapter, params, args.out, timeout=args.timeout,
                          progress=args.progress)
    except (ValueError, TypeError, FileNotFoundError) as err:
        if getattr(err, "notebook_path", None) is None and not hasattr(err, "ename"):
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"FAILED: {err}\nnotebook: {getattr(err, 'notebook_path', None)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"INTERRUPTED; partial notebook (marked failed): "
              f"{getattr(err, 'notebook_path', None)}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - cell errors, timeouts: report and fail
        print(f"FAILED ({type(err).__name__}): {str(err).strip().splitlines()[-1] if str(err) else ''}"
              f"\nnotebook (marked failed): {getattr(err, 'notebook_path', None)}",
              file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
