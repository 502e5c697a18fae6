"""Feature-extraction cost of the default build's Galileo-nano models, per image and width.

What the default profile's test and train banks cost (docs/book.md, "Test images and build
time"): seconds per image of ``slimlib.features.extract`` (no cache) for galileo-nano
(13-band EuroSAT) and galileo-nano-rgb (EuroSAT RGB), patch 8, at a few widths, and how many
of the 31 widths give a distinct slimmed model (identical kept dims → identical features →
one feature-cache entry).

    SLIMLIB_DATA=../shared/data SLIMLIB_WEIGHTS=../shared/weights \\
        nice -n 10 .venv/bin/python benchmarks/bench_extract_cost.py [--images 200]

The machine is shared, so the absolute seconds vary with the load; the ratios between widths
and models are what the build estimate uses.
"""

from __future__ import annotations

import argparse
import time

import torch

from slimlib import data, features, models
from slimlib.constants import WIDTHS
from slimlib.settings import Settings
from slimlib.slimming import slim

BENCH_WIDTHS = (1.0, 0.5, 0.1, 0.01)


def seconds_per_image(model: torch.nn.Module, images, *, batch_size: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        features.extract(model, images, batch_size=batch_size, device="cpu", cache=False,
                         progress=False)
        best = min(best, time.perf_counter() - start)
    return best / len(images[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    args = parser.parse_args()
    settings = Settings.from_env()
    torch.set_num_threads(1)  # the build runs two processes on two cores
    print(f"torch threads: {torch.get_num_threads()}; {args.images} images; best of "
          f"{args.repeats}")
    per_class = max(1, args.images // 10)
    # the tiny models cost the same with random weights (no checkpoint needed)
    for name, dataset, pretrained in (("galileo-nano", "eurosat-ms", True),
                                      ("galileo-nano-rgb", "eurosat-rgb", True),
                                      ("cv-moco-tiny", "eurosat-rgb", False)):
        options = {"patch_size": 8} if name.startswith("galileo") else {}
        model = models.load(name, pretrained=pretrained, settings=settings, **options)
        ds = data.load(dataset, "all", limit_per_class=per_class, settings=settings)
        pair = (features.prepare_dataset(ds, model.spec), ds.labels)
        distinct: dict[str, float] = {}
        for width in WIDTHS:
            slimmed = slim(model, width)
            distinct.setdefault(features.module_fingerprint(slimmed), width)
        cost = {w: seconds_per_image(slim(model, w), pair, batch_size=args.batch_size,
                                     repeats=args.repeats) for w in distinct.values()}
        for width in BENCH_WIDTHS:
            s = cost.get(width) or seconds_per_image(slim(model, width), pair,
                                                     batch_size=args.batch_size, repeats=1)
            print(f"{name:18s} {dataset:12s} s={width:<5} {1e3 * s:7.2f} ms/image  "
                  f"ratio to s=1: {s / cost[1.0]:.2f}")
        total = sum(cost.values())
        print(f"{name}: {len(distinct)} distinct slimmed models over the {len(WIDTHS)} widths; "
              f"one 31-width sweep costs {1e3 * total:.1f} ms per image "
              f"({total / cost[1.0]:.1f} x one full-width pass)")


if __name__ == "__main__":
    main()
