"""Command line: ``python -m slimlib run notebooks/03_rs.py -p models '["rs-mae-tiny"]'``.

Subcommands:

* ``run CHAPTER [-p NAME VALUE]... [--out runs]``: execute a chapter with papermill
  (values parsed as JSON, then YAML); prints the executed notebook's path.
* ``chapters [--folder notebooks]``: list the chapters and their parameters.
* ``profiles``: list the run profiles.
* ``sweep --profile P --executor slurm|local [--wait]`` / ``--status`` / ``--merge``: run a
  profile's sweep as shards through submitit (see ``docs/cluster.md``).
* ``diagnose --model M --data D [options]``: slimmability report of your own model on your
  own data (``slimlib.diagnose``); see ``docs/deploy.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m slimlib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    run = sub.add_parser("run", help="execute a chapter with papermill", formatter_class=fmt)
    run.add_argument("chapter", help="path to notebooks/NN_name.py")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="override a parameter (JSON/YAML value)")
    run.add_argument("--out", default="runs", help="output folder")
    run.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    run.add_argument("--progress", action="store_true", help="show a cell progress bar")
    chapters = sub.add_parser("chapters", help="list chapters and their parameters",
                              formatter_class=fmt)
    chapters.add_argument("--folder", default="notebooks", help="folder of the chapters")
    sub.add_parser("profiles", help="list run profiles")
    from slimlib.book import sweep_cli

    sweep_cli.add_parser(sub)
    _diagnose_parser(sub)
    return parser


def _diagnose_parser(sub) -> None:
    from slimlib._imageio import SCALES
    from slimlib.book.sweep_cli import DeprecatedAlias
    from slimlib.diagnosis import DEFAULT_ALIGN, DEFAULT_WIDTHS, SENSITIVITY_WIDTHS

    d = sub.add_parser("diagnose", help="slimmability report of a model on a dataset",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--model", required=True,
                   help="registry name, timm name, or module:function returning an nn.Module")
    d.add_argument("--data", required=True,
                   help="registry dataset name or ImageFolder folder (./name or registry:name "
                        "when both exist)")
    d.add_argument("--checkpoint", default=None,
                   help="the model's weights: 'random', 'pretrained' or a weights file "
                        "(safetensors or a torch state dict); None: registry models load their "
                        "published weights, timm models random init")
    d.add_argument("--weights", dest="checkpoint", action=DeprecatedAlias, new="--checkpoint",
                   help="deprecated alias of --checkpoint")
    d.add_argument("--bands", nargs="+", default=None,
                   help="band names (None: the data's own; 8-bit images are R G B)")
    d.add_argument("--widths", type=float, nargs="+", default=list(DEFAULT_WIDTHS),
                   help="width factors (1 is always added)")
    d.add_argument("--protocols", nargs="+", default=["knn"], choices=["knn", "linear"],
                   help="probes to run (knn is required)")
    d.add_argument("--keep", type=float, default=0.95, help="target retention")
    d.add_argument("--folds", type=int, default=5, help="k of the k-fold CV on the train split")
    d.add_argument("--limit-per-class", type=int, default=None,
                   help="at most this many images per class and split (None: all)")
    d.add_argument("--image-size", type=int, default=None,
                   help="input side in pixels (None: the model's own)")
    d.add_argument("--no-control", action="store_true", help="skip the random-init control")
    d.add_argument("--no-latency", action="store_true", help="skip timing the widths")
    d.add_argument("--latency-batch", type=int, default=8,
                   help="batch size of the throughput measurement")
    d.add_argument("--latency-repeats", type=int, default=5, help="timed rounds per width")
    d.add_argument("--batch-size", type=int, default=64, help="batch size of feature extraction")
    d.add_argument("--device", default=None, help="torch device (None: cuda if available)")
    d.add_argument("--seed", type=int, default=0,
                   help="seed of random weights, the control, the CV folds and the bootstrap")
    d.add_argument("--scale", default=None, choices=list(SCALES),
                   help="how images that are not 8-bit become model units: reflectance10000 "
                        "(Sentinel-2 DN / 10 000), uint16max (/ 65 535, R G B), stored (as "
                        "stored); None: from the data type and the band names")
    d.add_argument("--out", default="slimreport", help="report folder")
    d.add_argument("--overwrite", action="store_true",
                   help="replace the report already in --out (refused otherwise)")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.add_argument("--no-sensitivity", action="store_true",
                   help="skip the per-block sensitivity and the slimming verification tables")
    d.add_argument("--sensitivity-train-per-class", type=int, default=100,
                   help="fit the sensitivity's k-NN probe on at most this many training images "
                        "per class (every test image is scored); 0: all")
    d.add_argument("--align", type=int, default=DEFAULT_ALIGN,
                   help="at the recommended width also try kept dims rounded up to a multiple "
                        "of this and recommend it when it keeps the target and runs faster "
                        "here; 0: off")
    d.add_argument("--compare", default=None, metavar="CHECKPOINT",
                   help="a second checkpoint of the same architecture ('random', 'pretrained' "
                        "or a weights file): same data and widths, differences with paired "
                        "intervals")
    d.add_argument("--sensitivity-widths", type=float, nargs="+",
                   default=list(SENSITIVITY_WIDTHS),
                   help="widths of the per-block sensitivity (default: "
                        f"{' '.join(map(str, SENSITIVITY_WIDTHS))})")


def _diagnose(args) -> int:
    from slimlib.diagnosis import diagnose
    from slimlib.settings import Settings

    try:
        result = diagnose(
            args.model, args.data, out=args.out, weights=args.checkpoint, bands=args.bands,
            widths=args.widths, protocols=args.protocols, keep=args.keep, folds=args.folds,
            limit_per_class=args.limit_per_class, image_size=args.image_size,
            control=not args.no_control, latency=not args.no_latency,
            latency_batch=args.latency_batch, latency_repeats=args.latency_repeats,
            batch_size=args.batch_size, device=args.device, seed=args.seed, scale=args.scale,
            overwrite=args.overwrite, progress=not args.no_progress,
            sensitivity=not args.no_sensitivity, sensitivity_widths=args.sensitivity_widths,
            sensitivity_train_per_class=args.sensitivity_train_per_class,
            align=args.align, compare=args.compare,
            settings=Settings.from_env())  # the entry point
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"slimlib diagnose: error: {err}", file=sys.stderr)
        return 2
    from slimlib.diagnosis import summary_lines

    for line in summary_lines(result):
        print(line)
    print(result["paths"]["html"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "diagnose":
        return _diagnose(args)
    if args.command == "run":
        return _run(args)
    elif args.command == "chapters":
        from slimlib.book import chapter_parameters, list_chapters

        for path in list_chapters(args.folder):
            print(f"{path}: {', '.join(chapter_parameters(path))}")
    elif args.command == "profiles":
        from slimlib.book.profiles import PROFILES

        for name, prof in PROFILES.items():
            print(f"{name}: models={list(prof.models)} widths={len(prof.widths)} "
                  f"seeds={list(prof.seeds)} protocols={list(prof.protocols)}")
    elif args.command == "sweep":
        from slimlib.book import sweep_cli

        return sweep_cli.main(args)
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(args: argparse.Namespace) -> int:
    """``run``: 0 when every cell finished; 2 for bad parameters (no kernel started); 1 when a
    cell failed or timed out; 130 when interrupted (Ctrl-C or SIGTERM). Unfinished runs
    leave a notebook marked failed (``….failed.ipynb`` / ``….interrupted.ipynb``)."""
    import signal

    from slimlib.book import parse_value, run_chapter

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
