"""Benchmark: a full 31-width k-NN sweep of a ViT-S/16-sized encoder on CPU.

Setup (the issue's target: <= 10 min on a 2-core CPU):

* encoder: timm ``vit_small_patch16_224`` architecture, random init, 3 bands,
  ``dynamic_img_size=True`` fed 64x64 images (4x4 = 16 patch tokens + CLS);
* data: 2,000 train + 1,000 test images at 64x64, a stratified subset of the embedded
  EuroSAT RGB when ``$SLIMLIB_DATA`` is set, else synthetic images;
* sweep: the paper's 31 widths, k-NN (k=5) with 5 seeds, redundancy metrics on;
* a cold run (empty feature cache, new table) then a warm rerun (every row on disk).

Run: ``python benchmarks/bench_sweep.py [--widths 31] [--threads 2]``.
Prints the wall time, a per-stage breakdown and a few rows of the retention table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slimlib.specs import ImageDataset, ModelSpec  # noqa: E402

STAGES = ("load_data", "load_model", "prepare", "slim", "flops", "extract", "probe", "metrics",
          "write", "read")


class ViTEncoder(nn.Module):
    """timm ViT returning pooled (CLS) features (B, 384), with a ModelSpec."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        import timm

        self.vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0,
                                     in_chans=spec.in_chans, dynamic_img_size=True)
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)


def _subset(ds: ImageDataset, per_class: int, seed: int) -> ImageDataset:
    """Stratified subset with ``per_class`` images of each class."""
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(ds.num_classes):
        idx = torch.nonzero(ds.labels == c).flatten()
        if len(idx) < per_class:
            raise SystemExit(f"{ds.name}/{ds.split}: class {c} has {len(idx)} < {per_class} images")
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    index = torch.cat(keep).sort().values
    return ImageDataset(ds.name, ds.split, ds.images[index], ds.labels[index], ds.classes,
                        ds.bands, ds.units, ds.synthetic,
                        notes=ds.notes + [f"benchmark subset: {per_class} per class"])


def _synthetic(split: str, per_class: int, size: int, seed: int) -> ImageDataset:
    gen = torch.Generator().manual_seed(seed)
    colours = torch.rand(10, 3, generator=torch.Generator().manual_seed(99))
    labels = torch.arange(10).repeat_interleave(per_class)
    images = 0.3 * torch.rand(len(labels), 3, size, size, generator=gen)
    images += 0.6 * colours[labels][:, :, None, None]
    return ImageDataset("synthetic-rgb", split, images.clamp(0, 1), labels,
                        tuple(f"class{i}" for i in range(10)), ("R", "G", "B"), "rgb01",
                        synthetic=True)


def load_data(n_train: int, n_test: int, size: int) -> tuple[ImageDataset, ImageDataset]:
    from slimlib._paths import data_root

    if data_root(required=False) is not None:
        from slimlib import data

        train = data.load("eurosat-rgb", "train")
        test = data.load("eurosat-rgb", "test")
        return _subset(train, n_train // 10, 0), _subset(test, n_test // 10, 1)
    print("SLIMLIB_DATA is not set: using synthetic 64x64 images (labelled synthetic)")
    return _synthetic("train", n_train // 10, size, 0), _synthetic("test", n_test // 10, size, 1)


def timed_sweep(encoder: nn.Module, pair: tuple, widths, out: Path, args) -> tuple[float, dict]:
    from slimlib.sweeping import sweep

    start = time.perf_counter()
    table = sweep({"vit-s16-random": encoder}, [pair], widths=widths, seeds=range(args.seeds),
                  protocols=("knn",), out=out, batch_size=args.batch_size, device="cpu",
                  progress=not args.quiet)
    return time.perf_counter() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, default=31, help="use the first N of the 31 "
                        "widths (always including 1.0)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from slimlib.measure import WIDTHS
    from slimlib.sweeping import retention

    widths = sorted(set(WIDTHS[: args.widths - 1]) | {1.0})
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        os.environ["SLIMLIB_CACHE"] = str(Path(tmp) / "cache")  # cold feature cache
        t0 = time.perf_counter()
        train, test = load_data(args.n_train, args.n_test, args.size)
        t_load = time.perf_counter() - t0
        spec = ModelSpec(name="vit-s16-random", family="cv", architecture="ViT-S/16",
                         bands=("R", "G", "B"), mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), units="rgb01", input_size=args.size,
                         patch_size=16, embed_dim=384, notes="random init (benchmark)")
        torch.manual_seed(0)
        encoder = ViTEncoder(spec).eval()
        n_params = sum(p.numel() for p in encoder.parameters())
        print(f"data: {train.display_name} {len(train)} train + {len(test)} test at "
              f"{args.size}x{args.size} (loaded in {t_load:.1f} s); encoder ViT-S/16 "
              f"{n_params / 1e6:.1f} M params, {(args.size // 16) ** 2} tokens + CLS; "
              f"{len(widths)} widths x {args.seeds} seeds k-NN; torch threads {args.threads}")
        out = Path(tmp) / "sweep.csv"
        load_before = os.getloadavg()[0]
        cold, table = timed_sweep(encoder, (train, test), widths, out, args)
        load_after = os.getloadavg()[0]
        warm, table2 = timed_sweep(encoder, (train, test), widths, out, args)

        timings = table.attrs["timings"]
        print(f"\ncold run: {cold:.1f} s total ({cold / 60:.2f} min), {len(table)} rows; "
              f"1-min load average {load_before:.1f} before / {load_after:.1f} after on "
              f"{os.cpu_count()} CPUs (other processes slow this down)")
        print(f"{'stage':<12}{'seconds':>10}{'share':>9}")
        for stage in STAGES:
            if stage in timings:
                print(f"{stage:<12}{timings[stage]:>10.1f}{timings[stage] / cold:>9.1%}")
        other = cold - sum(timings.values())
        print(f"{'other':<12}{other:>10.1f}{other / cold:>9.1%}")
        per_width = table.groupby("width").first()
        images = len(train) + len(test)
        ext = per_width["extract_s"]
        print(f"extraction: {images * len(widths) / timings['extract']:.0f} img/s averaged over "
              f"widths ({images} images per width); per width {ext.min():.1f} s (width "
              f"{ext.idxmin()}) to {ext.max():.1f} s (width {ext.idxmax()}). The first width also "
              f"extracts the width-1 test features (CKA reference), which width 1 then reuses.")
        print(f"warm rerun (every row on disk, nothing recomputed): {warm:.1f} s, "
              f"identical values: {table2['value'].equals(table['value'])}")
        ret = retention(table)
        show = ret[ret.width.isin([widths[0], 0.1, 0.5, 1.0])]
        print("\nk-NN retention (random-init encoder, for pipeline timing only):")
        print(show[["width", "rel_compute", "mean", "retention"]].to_string(index=False))


if __name__ == "__main__":
    main()
