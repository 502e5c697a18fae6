"""Galileo-nano in slimlib: k-NN, retention, compute and CPU speed (docs/models.md, Galileo).

Everything goes through slimlib's own machinery: ``slimlib.models.load`` (weights from the
weights root), ``slimlib.data.load`` + the spec's preprocessing, ``slimlib.sweep`` (k-NN, k = 5,
cosine, macro accuracy; relative compute by ``slimlib.measure.flops``) and ``slimlib.slim``.

    SLIMLIB_DATA=../shared/data SLIMLIB_WEIGHTS=../shared/weights OMP_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_galileo.py [--rgb-train 100 --rgb-test 50]

Prints four tables:

1. k-NN on EuroSAT 13-band (216 train / 54 test) and on an EuroSAT RGB subset
   (``--rgb-train``/``--rgb-test`` images per class of the manifest's train/test split, a
   stratified subset drawn by ``slimlib.data.load(limit_per_class=..., seed=0)``), pretrained
   (13-band: patch 4 and 8; RGB: patch 4) vs random init (``--init-seeds``), per width;
2. the RGB-to-reflectance mapping: k-NN on the RGB subset for each ``--gains`` value
   (``reflectance = rgb01 / gain``; slimlib's default is RGB_GAIN = 1/0.275);
3. seconds per image on one CPU thread at s = 1 and s = 0.1 (13-band 64 px, batch 16);
4. the attention-mask cost: the 4 blocks with no mask vs an all-true boolean mask, broadcast
   (B, 1, 1, N) or materialised (B, H, N, N) as the authors' code builds it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

import slimlib
from slimlib import models
from slimlib.data.bands import RGB_GAIN

WIDTHS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01)
RANDOM_WIDTHS = (1.0, 0.01)


def _sweep(encoders: dict, datasets: dict, widths, out: Path) -> pd.DataFrame:
    return slimlib.sweep(encoders, datasets, widths=widths, seeds=(0,), protocols=("knn",),
                         metrics=False, out=out, progress=False, device="cpu", batch_size=64)


def _random(name: str, seed: int, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.load(name, pretrained=False, **options)


def knn_tables(args, out: Path) -> pd.DataFrame:
    ms = (slimlib.data.load("eurosat-ms", "train", root=args.data_root),
          slimlib.data.load("eurosat-ms", "test", root=args.data_root))
    rgb = (slimlib.data.load("eurosat-rgb", "train", root=args.data_root,
                             limit_per_class=args.rgb_train),
           slimlib.data.load("eurosat-rgb", "test", root=args.data_root,
                             limit_per_class=args.rgb_test))
    frames = []
    pre = {f"pretrained p{p}": models.load("galileo-nano", patch_size=p, weights=args.weights)
           for p in (4, 8)}
    frames.append(_sweep(pre, {"eurosat-ms": ms}, WIDTHS, out / "ms.csv"))
    rand = {f"random init p4 seed {s}": _random("galileo-nano", s) for s in args.init_seeds}
    frames.append(_sweep(rand, {"eurosat-ms": ms}, RANDOM_WIDTHS, out / "ms_random.csv"))
    pre = {"pretrained p4": models.load("galileo-nano-rgb", weights=args.weights)}
    frames.append(_sweep(pre, {"eurosat-rgb": rgb}, WIDTHS, out / "rgb.csv"))
    gains = {f"pretrained p4 gain {g:.3g}": models.load("galileo-nano-rgb", weights=args.weights,
                                                        rgb_gain=g)
             for g in args.gains if abs(g - RGB_GAIN) > 1e-9}
    if gains:
        frames.append(_sweep(gains, {"eurosat-rgb": rgb}, (1.0,), out / "rgb_gain.csv"))
    rand = {f"random init p4 seed {s}": _random("galileo-nano-rgb", s) for s in args.init_seeds}
    frames.append(_sweep(rand, {"eurosat-rgb": rgb}, RANDOM_WIDTHS, out / "rgb_random.csv"))
    table = pd.concat(frames, ignore_index=True)
    table["n"] = table["n_train"].astype(str) + "/" + table["n_test"].astype(str)
    return table


def _per_image_s(model, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) / x.shape[0]


def timing(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(16, 10, 64, 64)
    rows, mask_rows = [], []
    for patch in (4, 8):
        enc = models.load("galileo-nano", patch_size=patch, weights=args.weights)
        for width in (1.0, 0.1):
            model = enc if width == 1 else slimlib.slim(enc, width)
            rows.append({"patch": patch, "width": width, "tokens": (64 // patch) ** 2 * 5,
                         "s_per_image": _per_image_s(model, x, args.repeats)})
        backbone = enc.backbone
        groups = {g: x[:, idx] for g, idx in enc.groups.items()}
        with torch.no_grad():
            tokens = backbone.embed(groups, patch_size=patch, month=6)
        n, heads = tokens.shape[1], backbone.blocks[0].attn.num_heads
        all_true = torch.ones(tokens.shape[0], 1, 1, n, dtype=torch.bool)
        # the authors' encoder builds mask[:, None, None].repeat(1, heads, N, 1): (B, H, N, N)
        materialised = all_true.repeat(1, heads, n, 1)

        def blocks(mask, tokens=tokens, backbone=backbone):
            def run():
                t = tokens
                for block in backbone.blocks:
                    t = block(t, attn_mask=mask)
                return t
            return run

        with torch.no_grad():
            torch.testing.assert_close(blocks(None)(), blocks(all_true)(), atol=1e-5, rtol=1e-5)
            for label, mask in (("none (slimlib)", None), ("all-true (B,1,1,N)", all_true),
                                ("all-true (B,H,N,N), as the authors", materialised)):
                fn = blocks(mask)
                fn()
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - start)
                mask_rows.append({"patch": patch, "mask": label,
                                  "s_per_image": statistics.median(times) / x.shape[0]})
    return pd.DataFrame(rows), pd.DataFrame(mask_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("SLIMLIB_DATA"))
    parser.add_argument("--weights", default=os.environ.get("SLIMLIB_WEIGHTS"))
    parser.add_argument("--rgb-train", type=int, default=100, help="RGB train images per class")
    parser.add_argument("--rgb-test", type=int, default=50, help="RGB test images per class")
    parser.add_argument("--init-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gains", type=float, nargs="+", default=[RGB_GAIN, 1.0, 2.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="folder for the sweep CSVs")
    parser.add_argument("--skip-knn", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if not args.data_root or not args.weights:
        parser.error("set SLIMLIB_DATA and SLIMLIB_WEIGHTS (or --data-root / --weights)")
    pd.set_option("display.width", 200)
    if not args.skip_timing:
        speed, mask = timing(args)
        print("\n## Seconds per image, 1 CPU thread, 13-band 64 px, batch 16 (median of "
              f"{args.repeats})\n")
        print(speed.to_markdown(index=False, floatfmt=".4f"))
        print("\n## Attention mask cost (4 blocks only)\n")
        print(mask.to_markdown(index=False, floatfmt=".4f"))
    if not args.skip_knn:
        out = args.out or Path(tempfile.mkdtemp(prefix="bench_galileo_"))
        out.mkdir(parents=True, exist_ok=True)
        table = knn_tables(args, out)
        cols = ["dataset", "model", "n", "width", "d_k", "d_h", "rel_compute", "value"]
        print(f"\n## k-NN (k=5, cosine, macro accuracy); sweep CSVs in {out}\n")
        print(table[cols].sort_values(["dataset", "model", "width"], ascending=[True, True, False])
              .to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
