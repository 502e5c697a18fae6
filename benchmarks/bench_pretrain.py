"""Wall time to pretrain each embedded tiny model on this CPU, and its k-NN quality.

For every embedded model this script

1. trains it from scratch through :func:`slimlib.train.pretrained_encoder` in a fresh,
   temporary cache (``--use-cache`` uses the configured cache and trains only what is
   missing, which also warms it for the book), timing wall clock and process CPU;
2. extracts frozen features of the embedded train/test split (``slimlib.data.iter_prepared``
   with the model's spec) from the pretrained and from the random-init encoder;
3. scores k-NN (k = 5, cosine, ``slimlib.probes.knn_score``: balanced accuracy) at full
   width and at a few slimmed widths (``slimlib.slim``), on the test split of both the
   EuroSAT RGB and the CIFAR-10 embedded data (own domain and the other one).

Run::

    SLIMLIB_DATA=/path/to/data python benchmarks/bench_pretrain.py [--names rs-moco-tiny ...]

The CPU is shared while this runs on a busy machine: the table prints the 1-minute load
average before and after each model so inflated wall times can be recognised; CPU seconds
are the better measure of cost on a loaded machine (the recipe uses one thread).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

import numpy as np
import torch

WIDTHS = (1.0, 0.25, 0.0625)


def _features(encoder, dataset, spec, width: float = 1.0) -> torch.Tensor:
    from slimlib import data as sdata
    from slimlib.slimming import slim

    model = encoder if width == 1.0 else slim(encoder, width)
    model.eval()
    out = []
    with torch.no_grad():
        for x, _ in sdata.iter_prepared(dataset, spec, batch_size=500):
            out.append(model(x))
    return torch.cat(out)


def _knn(encoder, train, test, width: float) -> tuple[float, np.ndarray]:
    """k-NN (k = 5, cosine) of ``encoder`` at ``width``: the balanced-accuracy score and the
    per-test-image hit (1/0) vector, from one feature extraction."""
    from slimlib.probes import knn_predict, knn_score

    spec = encoder.spec
    train_x = _features(encoder, train, spec, width)
    test_x = _features(encoder, test, spec, width)
    score = knn_score(train_x, train.labels, test_x, test.labels, k=5, metric="cosine")
    pred = knn_predict(train_x, train.labels, test_x, k=5, metric="cosine")
    return score, (pred == np.asarray(test.labels)).astype(float)


def paired_gain(hits: np.ndarray, baseline_hits: np.ndarray) -> tuple[float, float]:
    """Accuracy gain over a baseline on the same test images and its paired standard error."""
    diff = hits - baseline_hits
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))


def _fmt(column: str, value: object) -> str:
    if isinstance(value, float):
        return (f"{value:.3f}" if column.startswith(("knn", "rand", "gain"))
                else f"{value:.0f}")
    return str(value)


def main() -> None:
    from slimlib import data as sdata
    from slimlib.train import embedded

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", nargs="*", default=list(embedded.EMBEDDED_SPECS))
    parser.add_argument("--use-cache", action="store_true",
                        help="use $SLIMLIB_CACHE (train only missing models) instead of a "
                             "fresh temporary cache")
    parser.add_argument("--parallel", type=int, default=0, metavar="P",
                        help="also time embedded.pretrain_missing with P processes on a "
                             "fresh cache (cold build of all names)")
    parser.add_argument("--no-knn", action="store_true", help="only time the pretraining")
    args = parser.parse_args()

    torch.set_num_threads(1)
    timing, scores = [], []
    total_wall = total_cpu = 0.0
    encoders = {}
    with contextlib.ExitStack() as stack:
        if not args.use_cache:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="slimlib-bench-"))
            os.environ["SLIMLIB_CACHE"] = tmp
        for name in args.names:
            domain = embedded._NAMES[name][0]
            load_before = os.getloadavg()[0]
            cached = embedded.checkpoint_path(name).exists()
            wall, cpu = time.perf_counter(), time.process_time()
            encoders[name] = embedded.pretrained_encoder(name, progress=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            state = torch.load(embedded.checkpoint_path(name), map_location="cpu",
                               weights_only=False)
            row = {"model": name, "data": embedded.EMBEDDED_DATA[domain]["display"]
                   + (" (synthetic)" if state.get("synthetic") else ""),
                   "steps": state["step"], "wall_s": wall, "cpu_s": cpu, "cached": cached,
                   # the wall time training took when the checkpoint was made (cached or not)
                   "train_s": float(state.get("wall_s", state["elapsed_s"])),
                   "load": f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"}
            timing.append(row)
            print(" ".join(f"{k}={_fmt(k, v)}" for k, v in row.items()), flush=True)
            synthetic = bool(state.get("synthetic"))
    if args.parallel:
        with tempfile.TemporaryDirectory(prefix="slimlib-bench-par-") as tmp:
            os.environ["SLIMLIB_CACHE"] = tmp
            wall = time.perf_counter()
            embedded.pretrain_missing(args.names, processes=args.parallel)
            wall = time.perf_counter() - wall
        print(f"pretrain_missing({len(args.names)} models, processes={args.parallel}): "
              f"wall {wall:.0f} s", flush=True)

    if not args.no_knn:
        eval_sets = ["synthetic-rgb"] if synthetic else [
            embedded.EMBEDDED_DATA[d]["dataset"] for d in ("rs", "cv")]
        splits = {d: (sdata.load(d, "train"), sdata.load(d, "test")) for d in eval_sets}
        for name, encoder in encoders.items():
            random_init = embedded.build_encoder(name)
            for dataset, (train, test) in splits.items():
                row = {"model": name, "eval data": dataset}
                hits = {}
                for s in WIDTHS:
                    row[f"knn@{s:g}"], hits[s] = _knn(encoder, train, test, s)
                    row[f"rand@{s:g}"], hits["rand", s] = _knn(random_init, train, test, s)
                # full-width gain over random init on the same test images (accuracy, with
                # its paired SE: both encoders see identical images, so the SE is smaller
                # than that of either score)
                row["gain@1"], row["gain_se"] = paired_gain(hits[1.0], hits["rand", 1.0])
                scores.append(row)
                print(" ".join(f"{k}={_fmt(k, v)}" for k, v in row.items()), flush=True)

    for rows in (timing, scores):
        if not rows:
            continue
        cols = list(rows[0])
        print("\n| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for row in rows:
            print("| " + " | ".join(_fmt(c, row[c]) for c in cols) + " |")
    print(f"\ntotal pretraining, one after another: wall {total_wall:.0f} s, CPU {total_cpu:.0f} s "
          f"({len(timing)} models, torch threads = 1)")


if __name__ == "__main__":
    main()
