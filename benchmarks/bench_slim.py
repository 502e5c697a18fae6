"""Latency/throughput of slimmed vs full ViT-S/16 and ViT-B/16 on this machine.

Prints one table measured in a single run: per width, the FLOP ratio full/slim, the
measured speed-up at batch 1 (latency) and batch 32 (throughput), and the time to slim.
Full and slimmed models are timed in alternation (full, slim, full, slim, ...) and the
speed-ups are ratios of medians, so drift in machine load hits both alike.
Run: ``.venv/bin/python benchmarks/bench_slim.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

import slimlib


def _time_pair(full: torch.nn.Module, small: torch.nn.Module, x: torch.Tensor,
               repeats: int) -> tuple[float, float]:
    """Median seconds per forward of ``full`` and ``small``, timed in alternation."""
    times: dict[int, list[float]] = {0: [], 1: []}
    with torch.inference_mode():
        full(x), small(x)  # warm-up
        for _ in range(repeats):
            for i, model in enumerate((full, small)):
                start = time.perf_counter()
                model(x)
                times[i].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25, 0.1])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reps1, reps32 = (5, 2) if args.quick else (20, 4)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, timm {timm.__version__}")
    header = (f"{'model':<10}{'width':>7}{'GFLOPs/img':>12}{'FLOP ratio':>12}"
              f"{'lat b1 ms':>11}{'speed-up b1':>13}{'img/s b32':>11}{'speed-up b32':>14}")
    print(header)
    for arch, name in (("vit_small_patch16_224", "ViT-S/16"), ("vit_base_patch16_224", "ViT-B/16")):
        model = timm.create_model(arch, num_classes=0).eval()
        one = torch.randn(1, 3, 224, 224)
        batch = torch.randn(32, 3, 224, 224)
        full_flops = slimlib.flops(model, one)
        for width in args.widths:
            small = slimlib.slim(model, width)
            base_lat, lat = _time_pair(model, small, one, reps1)
            base_b, small_b = _time_pair(model, small, batch, reps32)
            tp = 32 / small_b
            f = slimlib.flops(small, one)
            print(f"{name:<10}{width:>7.3g}{f / 1e9:>12.2f}{full_flops / f:>12.2f}"
                  f"{lat * 1e3:>11.1f}{base_lat / lat:>13.2f}{tp:>11.1f}{base_b / small_b:>14.2f}")
        if arch == "vit_base_patch16_224":
            times = []
            for _ in range(5):
                start = time.perf_counter()
                slimlib.slim(model, 0.25)
                times.append(time.perf_counter() - start)
            print(f"time to slim ViT-B/16 at s=0.25: median {statistics.median(times) * 1e3:.0f} ms "
                  f"over 5 runs")


if __name__ == "__main__":
    main()
