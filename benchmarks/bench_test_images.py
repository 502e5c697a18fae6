"""What the bigger EuroSAT RGB test set costs: one cold default-profile sweep, old vs new subset.

Runs ``slimlib.book.sweep_for`` of the default profile (galileo-nano-rgb, patch 8, all 31
widths, 3 probe seeds, k-NN, ``train_fraction=0.8``) on EuroSAT RGB twice, each with an empty
feature cache and results folder: with the previous test subset (``--old-test`` per class,
30) and with the new one (``--new-test``, 160 = all of the manifest's test images), the
training bank unchanged (the profile's ``limit_per_class``). Prints both wall times, the
CPU seconds of the process (less sensitive to other jobs on a shared machine than wall
time), the seconds spent extracting features, and the ratios (docs/book.md, "Test images and build
time").

    SLIMLIB_DATA=../shared/data SLIMLIB_WEIGHTS=../shared/weights \\
        nice -n 10 .venv/bin/python benchmarks/bench_test_images.py

The machine is shared: the ratio of the two runs (made back to back) is what the build
estimate uses, not their absolute seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from slimlib import book
from slimlib.book import profiles
from slimlib.settings import Settings


def cold_sweep(test_per_class: int, model: str) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(Settings.from_env(), cache=Path(tmp) / "cache",
                                       results=Path(tmp) / "results")
        profile = profiles.resolve("default", models=[model], datasets=["eurosat-rgb"],
                                   test_limit_per_class=test_per_class, settings=settings)
        start, cpu = time.perf_counter(), time.process_time()
        table = book.sweep_for(profile, [model])
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return (wall, cpu, table.attrs["timings"].get("extract", 0.0),
                int(table["n_test"].iloc[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-test", type=int, default=30)
    parser.add_argument("--new-test", type=int, default=160)
    parser.add_argument("--model", default="galileo-nano-rgb")
    args = parser.parse_args()
    runs = {}
    for label, n in (("old", args.old_test), ("new", args.new_test)):
        runs[label] = cold_sweep(n, args.model)
        wall, cpu, extract, n_test = runs[label]
        print(f"{label}: {n_test} test images: sweep {wall:.1f} s wall ({cpu:.1f} s CPU), of "
              f"which extraction {extract:.1f} s wall", flush=True)
    print(f"new / old: sweep {runs['new'][0] / runs['old'][0]:.2f}x wall, "
          f"{runs['new'][1] / runs['old'][1]:.2f}x CPU; extraction "
          f"{runs['new'][2] / runs['old'][2]:.2f}x wall")


if __name__ == "__main__":
    main()
