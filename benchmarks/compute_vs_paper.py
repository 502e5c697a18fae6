"""Our relative compute vs the paper's published relative compute, width by width.

For each model given (registry names from ``slimlib.models``, built with random weights, or
the SSL4EO ViT-S/16 architecture as a plain timm model when the registry is unavailable) it
prints FLOPs(s)/FLOPs(1) counted three ways — with the attention products Q K^T and A V
(slimlib's default), without them, and fvcore-style (no SDPA products, LayerNorms counted)
— next to the paper's value and the differences.

Run: ``.venv/bin/python benchmarks/compute_vs_paper.py [--models ssl4eo-vits16-moco ...]``.
"""

from __future__ import annotations

import argparse

import pandas as pd
import timm
import torch

from slimlib.book.reference import SERIES_TO_MODEL, paper_compute
from slimlib.measure import WIDTHS, compute_table


def _build(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    try:
        from slimlib import models

        encoder = models.load(name, pretrained=False).eval()
        spec = encoder.spec
        return encoder, torch.randn(1, spec.in_chans, spec.input_size, spec.input_size)
    except Exception as err:  # registry missing or model not buildable here
        if name.startswith("ssl4eo-vits16"):
            print(f"[{name}] registry unavailable ({err}); using timm vit_small_patch16_224, 13 bands")
            model = timm.create_model("vit_small_patch16_224", in_chans=13, num_classes=0).eval()
            return model, torch.randn(1, 13, 224, 224)
        raise


def compare(name: str) -> pd.DataFrame:
    model, x = _build(name)
    ours = compute_table(model, WIDTHS, x)
    no_attn = compute_table(model, WIDTHS, x, count_attention=False)
    fvcore = compute_table(model, WIDTHS, x, count_attention=False, count_norms=True)
    series = {v: k for k, v in SERIES_TO_MODEL.items()}[name]
    paper = paper_compute()
    paper = paper[paper["series"] == series]
    rows = []
    for i, width in enumerate(WIDTHS):
        match = paper[paper["s"].str.split("|").map(lambda s, w=width: str(w) in s)]
        ref = float(match["rel_compute"].iloc[0]) if len(match) else float("nan")
        rows.append({"model": name, "width": width, "paper": ref,
                     "ours": ours["rel_compute"].iloc[i],
                     "ours_no_attention": no_attn["rel_compute"].iloc[i],
                     "ours_fvcore_style": fvcore["rel_compute"].iloc[i]})
    table = pd.DataFrame(rows)
    table["diff"] = table["ours"] - table["paper"]
    table["diff_no_attention"] = table["ours_no_attention"] - table["paper"]
    table["diff_fvcore_style"] = table["ours_fvcore_style"] - table["paper"]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["ssl4eo-vits16-moco"])
    args = parser.parse_args()
    for name in args.models:
        table = compare(name)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"{name}: max |diff| counting attention {table['diff'].abs().max():.4f}, "
              f"without attention products {table['diff_no_attention'].abs().max():.4f}, "
              f"fvcore-style {table['diff_fvcore_style'].abs().max():.4f}\n")


if __name__ == "__main__":
    main()
