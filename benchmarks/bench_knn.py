"""Time the k-NN probe, the linear probe and the redundancy metrics on paper-sized features.

Sizes follow one GEO-Bench classification task: 20,000 train × 1,000 test features of a
ViT-S (D=384), 10 classes; the linear probe and metrics run on 2,000 samples (one sweep cell).

    .venv/bin/python benchmarks/bench_knn.py [--repeats 5] [--threads 2]

Prints one row per case: median and best wall time over the repeats (after one warm-up call)
and the score, so that a wrong-but-fast implementation is visible.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from slimlib.metrics import describe_features
from slimlib.probes import knn_score, linear_probe_score


def _features(n: int, centres: np.ndarray, rng: np.random.Generator, multilabel: bool = False):
    """Noisy features around class centres ``(C, D)``: ``(n, D)`` float32 and labels."""
    n_classes, d = centres.shape
    if multilabel:
        y = (rng.random((n, n_classes)) < 0.1).astype(np.float32)
        x = 0.15 * y @ centres
    else:
        y = rng.integers(0, n_classes, n)
        x = 0.2 * centres[y]
    return (x + rng.normal(size=(n, d))).astype(np.float32), y


def _time(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    value = fn()  # warm-up (first-call allocations, lazy imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    single = rng.normal(size=(10, 384))
    multi = rng.normal(size=(43, 768))
    tr_x, tr_y = _features(20_000, single, rng)
    te_x, te_y = _features(1_000, single, rng)
    lp_x, lp_y = tr_x[:2_000], tr_y[:2_000]
    ml_x, ml_y = _features(2_000, multi, rng, multilabel=True)
    mt_x, mt_y = _features(1_000, multi, rng, multilabel=True)
    big = rng.normal(size=(2_000, 768)).astype(np.float32)

    cases: list[tuple[str, Callable[[], float]]] = [
        ("knn cosine 20000x1000 D=384 C=10",
         lambda: knn_score(tr_x, tr_y, te_x, te_y, k=5)),
        ("knn euclidean 20000x1000 D=384 C=10",
         lambda: knn_score(tr_x, tr_y, te_x, te_y, k=5, metric="euclidean")),
        ("knn cosine multi-label 2000x1000 D=768 K=43",
         lambda: knn_score(ml_x, ml_y, mt_x, mt_y, k=5)),
        ("linear probe 2000x1000 D=384 C=10",
         lambda: linear_probe_score(lp_x, lp_y, te_x, te_y, seed=0)),
        ("linear probe multi-label 2000x1000 D=768 K=43",
         lambda: linear_probe_score(ml_x, ml_y, mt_x, mt_y, seed=0)),
        ("describe_features 2000 D=768",
         lambda: describe_features(big)["participation_ratio"]),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {load:.2f}, {args.repeats} repeats")
    print(f"{'case':48s} {'median s':>9s} {'best s':>8s} {'score':>8s}")
    for name, fn in cases:
        median, best, value = _time(fn, args.repeats)
        print(f"{name:48s} {median:9.3f} {best:8.3f} {value:8.4f}")


if __name__ == "__main__":
    main()
