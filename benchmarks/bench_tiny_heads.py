"""Where the eager path loses at small widths: attention with tiny heads on this CPU.

At s = 0.1 a ViT-S/16 head keeps 6 of its 64 dims. This times, on the real shapes of one block
at batch 32 (6 heads, 197 tokens), the ways PyTorch can compute that attention, against the
softmax over the same scores alone (which every variant must do, and which
``bench_slim.py``'s bound already counts as non-slimmable), and the full model's 64-dim heads.

Prints min / median / max ms of alternated rounds (every variant once per round) and the load
average. Usage: ``python benchmarks/bench_tiny_heads.py [--threads 1] [--rounds 9] [--dims 6]``.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
import torch.nn.functional as F


def _variants(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, full: torch.Tensor) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    d = q.shape[-1]
    scale = d ** -0.5
    scores = torch.randn(*q.shape[:-1], q.shape[-2])

    def padded(n: int):
        def run():
            qp, kp, vp = (F.pad(x, (0, n - d)) for x in (q, k, v))
            return F.scaled_dot_product_attention(qp, kp, vp, scale=scale)[..., :d]
        return run

    def manual():
        return ((q * scale) @ k.transpose(-2, -1)).softmax(-1) @ v

    def chunked(c: int):
        def run():
            return torch.cat([F.scaled_dot_product_attention(q[i:i + c], k[i:i + c], v[i:i + c],
                                                             scale=scale)
                              for i in range(0, q.shape[0], c)])
        return run

    def math():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

    out = {f"SDPA, head dim {d}": lambda: F.scaled_dot_product_attention(q, k, v, scale=scale)}
    for n in (8, 12, 16, 24, 32):
        if n > d:
            out[f"SDPA, zero-padded to {n}"] = padded(n)
    out |= {"matmul - softmax - matmul": manual, "SDPA, 8 images at a time": chunked(8),
            "SDPA, math backend": math, "softmax of the scores alone": lambda: scores.softmax(-1),
            f"SDPA, full model's head dim {full.shape[-1]}":
                lambda: F.scaled_dot_product_attention(full, full, full)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--dims", type=int, nargs="+", default=[6],
                        help="head dims to time (ViT-S/16: 6 at s = 0.1, 16 at s = 0.25)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, 6 heads, "
          f"197 tokens; load average at start {os.getloadavg()}")
    full = torch.randn(args.batch, 6, 197, 64)
    for d in args.dims:
        q, k, v = (torch.randn(args.batch, 6, 197, d) for _ in range(3))
        calls = _variants(q, k, v, full)
        from slimlib.measure import timed_rounds

        times = timed_rounds(calls, repeats=args.rounds, warmup=1)
        print(f"\nhead dim {d}: ms per call, min / median / max of {args.rounds} alternated rounds")
        for name, ts in times.items():
            ms = sorted(t * 1e3 for t in ts)
            print(f"  {name:34s} {ms[0]:7.2f} / {statistics.median(ms):7.2f} / {ms[-1]:7.2f}")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
