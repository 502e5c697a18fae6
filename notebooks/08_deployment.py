# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (slimlib)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Deployment: latency, choosing a width, exporting a slimmed encoder
#
# Post-hoc slimming produces a physically smaller encoder, so the saved FLOPs should show
# up as wall-clock time. This page measures latency and throughput per width on the machine
# that built the book, picks the smallest width that keeps a target retention, and exports
# that slimmed encoder to safetensors and ONNX with `slimlib.export`, timing ONNX Runtime
# beside PyTorch.
#
# **What it shows**: latency and throughput per width of the first RS model of this build on
# this machine, the width a 95 % retention target picks (with and without the random-init
# control), and that both exports reload to the same features. **What it cannot show**: the
# paper publishes no latency numbers, so there is no paper-vs-ours table; timings are one
# machine's (this book's build machine may be shared, so they are noisy), and the paper's
# ViT-B models are not timed here (`benchmarks/bench_slim.py` times ViT-S/16; see
# `docs/deploy.md`).

# %% tags=["parameters"]
# Parameters (papermill / `python -m slimlib run ... -p NAME VALUE`); None = from the profile.
profile = None  # "smoke" | "default" | "paper"; None: $SLIMLIB_PROFILE or "default"
models = None  # RS encoders (registry names), e.g. ["galileo-nano"]
datasets = None  # RS datasets (registry names); None: EuroSAT 13-band + RGB + UC Merced with a data root, else synthetic
widths = None  # width factors in (0, 1]
seeds = None  # probe seeds
protocols = None  # "knn" and/or "linear"
device = None  # None: CUDA when available, else CPU
batch_size = None  # feature-extraction batch size
data_root = None  # None: $SLIMLIB_DATA

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import slimlib
from slimlib import book, measure
from slimlib.book import comparison, pages, palette, plotting

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
import tempfile
from pathlib import Path

import torch

from slimlib import models as registry

model_name = cfg.models[0]
encoder = registry.load(model_name, pretrained=cfg.pretrained, **cfg.options_for(model_name))
spec = encoder.spec
bs = min(cfg.batch_size, 64)
x = torch.randn(bs, len(spec.bands), spec.input_size, spec.input_size,
                generator=torch.Generator().manual_seed(0))
aw = sorted(set(cfg.ablation_widths) | {1.0})
rows = []
for s in aw:
    small = slimlib.slim(encoder, s)
    t = measure.time_forward(small, x, repeats=cfg.latency_repeats)
    rows.append({"width": s, "flops": slimlib.flops(small, x[:1]), "params": slimlib.params(small),
                 **t})
lat = pd.DataFrame(rows)
lat["rel_compute"] = lat["flops"] / lat.loc[lat["width"] == 1.0, "flops"].iloc[0]
lat["speed-up"] = lat.loc[lat["width"] == 1.0, "ms"].iloc[0] / lat["ms"]
print(f"{model_name}, batch {bs} x {spec.input_size} px, {torch.get_num_threads()} threads, "
      f"{'CUDA' if x.is_cuda else 'CPU'}; median of {cfg.latency_repeats} runs "
      "(the build machine is shared, so timings are noisy)")
plotting.show_table(lat, "08_latency", precision=3)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(lat["rel_compute"], lat["ms"], marker="o", color=plotting.model_color(model_name))
axes[0].set_xlabel("relative compute (FLOPs)")
axes[0].set_ylabel(f"ms per batch of {bs}")
axes[1].plot(lat["rel_compute"], lat["speed-up"], marker="o", label="measured",
             color=plotting.model_color(model_name))
axes[1].plot(lat["rel_compute"], 1 / lat["rel_compute"], ls="--", color="0.4",
             label="ideal 1 / rel. compute")
axes[1].set_xlabel("relative compute (FLOPs)")
axes[1].set_ylabel("speed-up over s = 1")
axes[1].set_yscale("log")
for ax in axes:
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    palette.short_log_ticks(ax.xaxis)  # minor tick labels that never run together
palette.short_log_ticks(axes[1].yaxis)
plotting.legend(axes[1])  # outside the axes
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Choosing a width
#
# Pick the smallest width whose k-NN retention on the target data stays above a threshold
# (here 95 %), from the sweep of the chapter on RS slimmability (read from the result table,
# not recomputed); `std` is the spread of the k-NN accuracy over the probe seeds (each seed a
# class-stratified subsample of the bank).

# %%
target = 0.95
sweep_rows = book.sweep_for(cfg, [model_name])
ret = slimlib.retention(sweep_rows[sweep_rows["protocol"] == "knn"])
ok = ret[ret["retention"] >= target]
choice = comparison.at_smallest_width(ok, by=["dataset"])[
    ["dataset", "width", "rel_compute", "mean", "std", "n_seeds", "retention"]]
plotting.show_table(choice, "08_smallest_width_per_dataset", precision=4,
                    missing={"std": "one probe seed: no spread"})

# %% [markdown]
# A width is only worth deploying if the slimmed model still beats what the architecture gives
# for free: the same rule applied at the control widths, now also requiring accuracy above the
# random-init control by more than 2 SE (`slimlib.book.controls_for`; `above_random_se`
# is the SE of that difference).

# %%
_, _, cmp = book.controls_for(cfg, [model_name])
knn_cmp = cmp[cmp["protocol"] == "knn"]
safe = knn_cmp[(knn_cmp["retention"] >= target)
               & (knn_cmp["above_random"] > 2 * knn_cmp["above_random_se"])]
safe_choice = comparison.at_smallest_width(safe, by=["dataset"])[
    ["dataset", "width", "rel_compute", "value", "retention", "random_mean", "above_random",
     "above_random_se"]]
if len(safe_choice):
    plotting.show_table(safe_choice, "08_smallest_safe_width_per_dataset", precision=4)
chosen = float(max(choice["width"].max(), safe_choice["width"].max())) if len(safe_choice) \
    else float(choice["width"].max())
rule = (f"retention ≥ {target:.0%} on every dataset of this build"
        + (" and accuracy above random init by more than 2 SE" if len(safe_choice) else
           " (no control width is both ≥ the target and above random init, so that part of "
           "the rule is not applied)"))
if chosen < 1.0:
    verdict = f"**Chosen width s = {chosen:g}**: the smallest width with {rule}."
else:
    verdict = (f"**No slimming met the target**: no width below 1 gives {rule}, so s = 1 is "
               "kept and what is exported below is the **unslimmed** encoder (a check of the "
               "export path, not a slimmed model).")
display(Markdown(verdict))

# %% [markdown]
# ## Exporting and reloading the chosen encoder
#
# The encoder at the width chosen above (unslimmed where no width met the target; the output
# below says which). `slimlib.export` writes it as **safetensors** (the weights plus a JSON
# config of the kept dims and the options the model was loaded with; `slimlib.load_slimmed`
# rebuilds it, no pickled classes) and as **ONNX** (a graph with a dynamic batch axis that runs
# in ONNX Runtime without torch or slimlib). Both are reloaded here and compared with the
# in-memory model, and ONNX Runtime's latency is timed beside PyTorch's, in alternated rounds
# on the same batch (`slimlib.measure.time_alternated`).

# %%
import onnxruntime as ort

small = slimlib.slim(encoder, chosen).eval()
xc = x.cpu()
with tempfile.TemporaryDirectory() as tmp:
    st_path = slimlib.export(small, Path(tmp) / f"{model_name}-s{chosen}.safetensors")
    onnx_path = slimlib.export(small, Path(tmp) / f"{model_name}-s{chosen}.onnx",
                               example_input=xc[:1])
    sizes = {"safetensors": st_path.stat().st_size / 1e6,
             "onnx": onnx_path.stat().st_size / 1e6}
    reloaded = slimlib.load_slimmed(st_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
small, reloaded = small.cpu(), reloaded.cpu()
with torch.inference_mode():
    ref = small(xc)
    diff_st = float((reloaded(xc) - ref).abs().max())
diff_onnx = float(abs(session.run(None, {"x": xc.numpy()})[0] - ref.numpy()).max())
assert diff_st <= 1e-5 and diff_onnx <= 1e-4, (
    f"an exported model does not match: safetensors {diff_st:.1e}, ONNX {diff_onnx:.1e}")
what = f"slimmed encoder at s = {chosen:g}" if chosen < 1.0 else "unslimmed encoder (s = 1)"
print(f"exported: the {what}; safetensors {sizes['safetensors']:.2f} MB, max |diff| after "
      f"load_slimmed {diff_st:.1e}; ONNX {sizes['onnx']:.2f} MB, max |diff| in ONNX Runtime "
      f"{diff_onnx:.1e}")
speed = slimlib.measure.time_alternated(
    {"PyTorch (eager)": small,
     "ONNX Runtime": lambda t: session.run(None, {"x": t.numpy()})},
    xc, repeats=cfg.latency_repeats)
print(f"batch {len(xc)}, {torch.get_num_threads()} torch threads, CPU; median of "
      f"{cfg.latency_repeats} alternated rounds; vs_first > 1: faster than PyTorch")
plotting.show_table(speed, "08_onnx_vs_pytorch", precision=3)
