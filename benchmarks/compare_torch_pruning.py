"""Side by side: Torch-Pruning vs slimlib.slim on ViT-S/16 (same kept dims, first-index order).

Prunes the per-head Q/K/V dims (all heads kept) and the FFN hidden units of every block with
Torch-Pruning's MetaPruner, an importance that keeps the first indices (so the kept weights are
slimlib's ``order="first"``), the residual width left alone; then compares with
``slimlib.slim(model, s)``: kept dims, softmax scale, output difference on the manual and fused
attention paths, and the time to produce the slimmed model (median of 3).
Run: ``.venv/bin/python benchmarks/compare_torch_pruning.py [--widths 0.25 0.01]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import timm
import torch

import slimlib


class FirstIndices:
    """Torch-Pruning importance that ranks channel i above channel i+1 (keeps the first)."""

    def __call__(self, group) -> torch.Tensor:
        n = len(group[0].idxs)
        return torch.arange(n, 0, -1, dtype=torch.float32)


def tp_slim(model: torch.nn.Module, width: float) -> torch.nn.Module:
    import torch_pruning as tp

    m = copy.deepcopy(model)
    ignored = [m.patch_embed.proj, m.head] if not isinstance(m.head, torch.nn.Identity) else \
        [m.patch_embed.proj]
    for b in m.blocks:
        ignored += [b.attn.proj, b.mlp.fc2]
    pruner = tp.pruner.MetaPruner(
        m, torch.randn(1, 3, 224, 224), importance=FirstIndices(), pruning_ratio=1 - width,
        ignored_layers=ignored, num_heads={b.attn.qkv: b.attn.num_heads for b in m.blocks},
        prune_head_dims=True, prune_num_heads=False)
    pruner.step()
    for b in m.blocks:  # as Torch-Pruning's timm ViT example does
        b.attn.head_dim = b.attn.qkv.out_features // (3 * b.attn.num_heads)
        b.attn.attn_dim = b.attn.head_dim * b.attn.num_heads
    return m.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.01])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", num_classes=0).eval()
    x = torch.randn(4, 3, 224, 224)
    for width in args.widths:
        times_tp, times_sl = [], []
        for _ in range(3):
            t = time.perf_counter()
            pruned = tp_slim(model, width)
            times_tp.append(time.perf_counter() - t)
            t = time.perf_counter()
            ours = slimlib.slim(model, width)
            times_sl.append(time.perf_counter() - t)
        a, b = pruned.blocks[0].attn, ours.blocks[0].attn
        print(f"s={width}: head dims TP {a.head_dim} vs slimlib {b.head_dim}; FFN "
              f"{pruned.blocks[0].mlp.fc1.out_features} vs {ours.blocks[0].mlp.fc1.out_features};"
              f" scale TP {a.scale:.4f} vs slimlib {b.scale:.4f}")
        same = a.qkv.weight.shape == b.qkv.weight.shape and torch.equal(a.qkv.weight, b.qkv.weight)
        print(f"  same kept qkv weights: {same}")
        with torch.no_grad():
            ref = ours(x)
            for fused in (True, False):
                for blk in pruned.blocks:
                    blk.attn.fused_attn = fused
                diff = (pruned(x) - ref).abs().max().item() if ref.shape == pruned(x).shape \
                    else float("nan")
                print(f"  max |TP - slimlib| output, {'fused SDPA' if fused else 'manual'} "
                      f"path: {diff:.3g}")
        print(f"  time to slim: TP {statistics.median(times_tp) * 1e3:.0f} ms, slimlib "
              f"{statistics.median(times_sl) * 1e3:.0f} ms "
              f"({statistics.median(times_tp) / statistics.median(times_sl):.1f}x)")


if __name__ == "__main__":
    main()
