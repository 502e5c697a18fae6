"""Latency/throughput of slimmed vs full ViTs on this machine, with both physical bounds.

For every width s and every runtime (``eager`` PyTorch, ``fast`` = eager PyTorch through
``slimlib.deploy.optimize`` (exact rewrite of the blocks), ``compile`` = torch.compile/inductor
with frozen weights, ``fastcompile`` = torch.compile of the model after ``optimize``,
``onnx`` = ONNX Runtime CPU, ``fastonnx`` = ONNX Runtime on the exported
model after ``optimize``) it prints, measured in one run:

* ``FLOP ratio``: FLOPs(1) / FLOPs(s) (slimlib.flops, attention included): the pure limit.
* ``bound``: the achievable speed-up that counts the non-slimmable work (Amdahl):
  T_full / (T_fixed + (T_full - T_fixed) / r), with T_fixed the eager time of the patch
  embedding, every LayerNorm, the residual adds and the softmax over the N x N scores of every
  head (timed separately on the same shapes), and r the FLOP ratio without the patch embedding.
* ``eager-aN`` rows (``--align N``, default 8; 0 turns them off): the eager model from
  ``slimlib.slim(model, s, align=N)`` (kept dims rounded up to multiples of N); its FLOP
  ratio and bound are its own (it does more FLOPs), and its ``vs eager`` column is the aligned
  model against the unaligned eager model at the same s, in the same rounds (>= 1: aligned is
  not slower).
* speed-ups over the **full-width model in the same runtime**, as min / median / max over
  alternated rounds (each round times full, then slim; the ratio is taken within the round, so
  load drift hits both alike), and ``vs eager``: the slim model in this runtime against the
  eager slim model at the same width, timed in the same alternated rounds (what switching
  runtime gains; below 0.97 it is flagged ``!slow``). A median within-runtime speed-up above the
  FLOP ratio is flagged ``!>FLOP`` (not physical: check the measurement).

Run: ``.venv/bin/python benchmarks/bench_slim.py --threads 1 [--quick] [--runtimes eager onnx]
[--align 8]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import timm
import torch
import torch.nn.functional as F

import slimlib
from slimlib.deploy import compile_model, onnx_session, optimize
from slimlib.measure import timed_rounds

Runner = Callable[[torch.Tensor], torch.Tensor]


def _rounds(full: Runner, small: Runner, x: torch.Tensor, repeats: int,
            *others: Runner) -> tuple[list[float], ...]:
    """Per-round seconds of ``full``, ``small`` (and ``others``: the eager slim and the eager
    full model), timed in alternation after one warm-up each (``slimlib.measure.timed_rounds``)."""
    runners = [full, small, *others]
    times = timed_rounds({i: partial(run, x) for i, run in enumerate(runners)},
                         repeats=repeats, warmup=1)
    return tuple(times[i] for i in range(len(runners)))


def _stats(tf: list[float], ts: list[float], *_: list[float]
           ) -> tuple[float, float, float, float]:
    """(min, median, max) of per-round speed-ups and the median slim seconds."""
    ratios = [a / b for a, b in zip(tf, ts, strict=True)]
    return min(ratios), statistics.median(ratios), max(ratios), statistics.median(ts)


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fixed_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Eager seconds of the work slimming cannot shrink, for input ``x``."""
    blocks = slimlib.slimming.find_blocks(model)
    heads = int(blocks[0][1].attn.num_heads)
    with torch.inference_mode():
        tokens = model.patch_embed(x)
        n = tokens.shape[1] + int(getattr(model, "num_prefix_tokens", 0))
        b, d = x.shape[0], tokens.shape[-1]
        t = torch.randn(b, n, d)
        scores = torch.randn(b, heads, n, n)
        w, bias = torch.ones(d), torch.zeros(d)
        patch = _median_time(lambda: model.patch_embed(x), repeats)
        norm = _median_time(lambda: F.layer_norm(t, (d,), w, bias), repeats)
        add = _median_time(lambda: t + t, repeats)
        soft = _median_time(lambda: scores.softmax(-1), repeats)
    depth = len(blocks)
    return patch + norm * (2 * depth + 1) + add * 2 * depth + soft * depth


def _runner(runtime: str, model: torch.nn.Module, one: torch.Tensor) -> Runner:
    if runtime == "eager":
        return model
    if runtime == "fast":
        return optimize(model)
    if runtime == "compile":
        return compile_model(model)
    if runtime == "fastcompile":
        return compile_model(optimize(model))
    if runtime == "fastonnx":
        return onnx_session(optimize(model), example_input=one)
    return onnx_session(model, example_input=one)


def _load() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _patch_flops(model: torch.nn.Module, one: torch.Tensor) -> int:
    return slimlib.flops(model.patch_embed, one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--widths", type=float, nargs="+", default=[0.75, 0.5, 0.25, 0.1])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--align", type=int, default=8,
                        help="also time slim(..., align=N) in eager (eager-aN rows); 0: off")
    parser.add_argument("--models", nargs="+", default=["vit_small_patch16_224"])
    parser.add_argument("--runtimes", nargs="+", default=["eager", "fast", "compile", "onnx"],
                        choices=["eager", "fast", "compile", "fastcompile", "onnx", "fastonnx"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reps1, reps_b = (5, 3) if args.quick else (15, 5)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, timm {timm.__version__}"
          f"; speed-ups over full width in the same runtime: min/median/max of {reps1} (b1), {reps_b} "
          f"(b{args.batch}) alternated rounds; load average (1/5/15 min) at start {_load()}")
    print(f"{'model':<24}{'s':>6}{'GFLOP/img':>10}{'FLOP ratio':>11}{'bound':>7}  {'runtime':<8}"
          f"{'ms b1':>8}{'speed-up b1 (min/med/max)':>27}{'img/s b' + str(args.batch):>10}"
          f"{'speed-up b' + str(args.batch) + ' (min/med/max)':>28}{'vs eager':>9}{'vs eager full':>22}  flags")
    for arch in args.models:
        model = timm.create_model(arch, num_classes=0).eval()
        one = torch.randn(1, 3, 224, 224)
        batch = torch.randn(args.batch, 3, 224, 224)
        full_flops = slimlib.flops(model, one)
        patch = _patch_flops(model, one)
        with torch.inference_mode():
            t_full = _median_time(lambda m=model, b=batch: m(b), reps_b)
        t_fixed = fixed_seconds(model, batch, reps_b)
        print(f"# {arch}: eager full {t_full * 1e3:.0f} ms at b{args.batch}, non-slimmable "
              f"{t_fixed * 1e3:.0f} ms ({t_fixed / t_full:.0%})")
        runners = {"eager_full": model}
        for runtime in args.runtimes:
            runners[runtime] = _runner(runtime, model, one)
        for width in args.widths:
            small = slimlib.slim(model, width)
            rows = [(runtime, small, runtime) for runtime in args.runtimes]
            if args.align:
                rows.append((f"eager-a{args.align}", slimlib.slim(model, width, align=args.align),
                             "eager"))
            for label, variant, runtime in rows:
                f = slimlib.flops(variant, one)
                ratio = full_flops / f
                r_slim = (full_flops - patch) / (f - patch)
                bound = t_full / (t_fixed + (t_full - t_fixed) / r_slim)
                full_run = runners[runtime]
                run = _runner(runtime, variant, one)
                ref = small if variant is not small or runtime != "eager" else None
                if "compile" not in runtime:
                    lo1, med1, hi1, t1 = _stats(*_rounds(full_run, run, one, reps1))
                    b1 = f"{t1 * 1e3:>8.1f}{f'{lo1:.2f}/{med1:.2f}/{hi1:.2f}':>27}"
                else:  # one compile per shape is costly: batch 32 only
                    med1, b1 = 0.0, f"{'–':>8}{'(b1 not compiled)':>27}"
                others = (ref, runners["eager_full"]) if ref is not None else ()
                times = _rounds(full_run, run, batch, reps_b, *others)
                lob, medb, hib, tb = _stats(*times)
                # this row's slim model vs the (unaligned) eager slim model, same rounds
                vs_eager = statistics.median(e / r for r, e in zip(times[1], times[2],
                                                                   strict=True)) \
                    if ref is not None else 1.0
                # ... and vs the eager full-width model (end-to-end), same rounds
                lof, medf, hif, _ = _stats(times[3], times[1]) if ref is not None \
                    else (lob, medb, hib, tb)
                flags = []
                if max(med1, medb, medf) > ratio:
                    flags.append("!>FLOP")
                if vs_eager < 0.97:
                    flags.append("!slow")
                print(f"{arch:<24}{width:>6.3g}{f / 1e9:>10.2f}{ratio:>11.2f}{bound:>7.2f}  "
                      f"{label:<8}{b1}{args.batch / tb:>10.1f}"
                      f"{f'{lob:.2f}/{medb:.2f}/{hib:.2f}':>28}{vs_eager:>9.2f}"
                      f"{f'{lof:.2f}/{medf:.2f}/{hif:.2f}':>22}  "
                      f"{medb / ratio:.2f}xFLOP {medb / bound:.2f}xbound "
                      f"(vs eager full: {medf / ratio:.2f}xFLOP) {' '.join(flags)}",
                      flush=True)
        if arch == args.models[-1]:
            times = []
            for _ in range(5):
                start = time.perf_counter()
                slimlib.slim(model, 0.25)
                times.append(time.perf_counter() - start)
            print(f"time to slim {arch} at s=0.25: median {statistics.median(times) * 1e3:.0f} ms")
    print(f"load average (1/5/15 min) at end {_load()}")


if __name__ == "__main__":
    main()
