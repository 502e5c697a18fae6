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
# # Ablations: which dimensions, which layers, which probe
#
# Three sanity checks from the paper's appendix, on the RS model and dataset of this build
# with the largest test split (`slimlib.claims.ablation_model`; in the default profile
# Galileo-nano's RGB mode on EuroSAT RGB), at the ablation widths, with the random-init
# control and the embedding-only floor of the same model drawn beside the curves:
#
# 1. **Dimension order**: keep the *first*, the *last* or a *random* subset of the Q/K/V and
#    FFN dimensions (random: one draw per seed, shown as a band over seeds). The paper finds
#    at most 2.8 points between first/last and the random mean (20 draws).
# 2. **Layer type**: slim attention only, the FFN only, or both. The paper: attention-only
#    floors at ~65–69 % of compute, FFN-only at ~34–37 %; both are needed to reach 1–6 %.
# 3. **Probe**: k-NN ($k=5$) vs a linear probe on the same frozen features.

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
from slimlib import chapters, claims, plotting, profiles, reference

chapters.setup_page()
cfg = profiles.resolve(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                       protocols=protocols, device=device, batch_size=batch_size,
                       data_root=data_root)

# %% [markdown]
# ```{note}
# What this page ran on is printed right below; rerun it with other settings with
# `python -m slimlib run notebooks/<this chapter>.py -p models '["rs-mae-tiny"]'`.
# ```

# %%
display(Markdown(profiles.data_note(cfg)))

# %% tags=["hide-input"]
model, dataset = claims.ablation_model(cfg)
aw = cfg.ablation_widths if 1.0 in cfg.ablation_widths else (*cfg.ablation_widths, 1.0)
orders = claims.order_rows(cfg)
_, floor, cmp = chapters.controls_for(cfg, [model], [dataset])
ctrl = cmp[(cmp["protocol"] == "knn") & (cmp["dataset"] == dataset)].sort_values("rel_compute")
ax = plotting.band_over_seeds(orders, hue="order")
ax.fill_between(ctrl["rel_compute"], ctrl["random_min"], ctrl["random_max"], color="0.5",
                alpha=0.2, label="random init (min–max over init seeds)")
ax.axhline(float(ctrl["floor"].iloc[0]), color="tab:red", ls=":",
           label="embedding-only floor")
ax.legend(fontsize=7)
ax.set_ylabel("k-NN accuracy (macro)")
ax.set_title(f"dimension order: {model} @ {orders['dataset'].iloc[0]} (band: min–max over seeds)")
plt.show()
by_order = orders.pivot_table(index="width", columns="order", values="value", aggfunc="mean")
by_order["max |first/last − random mean|"] = (by_order[["first", "last"]]
                                              .sub(by_order["random"], axis=0).abs().max(axis=1))
by_order

# %%
claims.evaluate(claims.Evidence(orders=orders, pretrained=cfg.pretrained),
                claims.select("order"))[["claim", "paper", "this build", "± (2 SE)", "verdict",
                                         "why"]]

# %% tags=["hide-input"]
parts = {"attention only": ("attn",), "FFN only": ("ffn",), "both": ("attn", "ffn")}
layer = pd.concat([chapters.sweep_for(cfg, [model], [dataset], widths=aw, protocols=["knn"],
                                      parts=p, metrics=False).assign(layers=label)
                   for label, p in parts.items()])
lr = slimlib.retention(layer).merge(
    layer[["parts", "layers"]].drop_duplicates(), on="parts")
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plotting.retention_vs_compute(lr, hue="layers", ax=axes[0], logx=False,
                              title="retention vs compute per slimmed layer type")
for label, part in lr.groupby("layers"):
    axes[1].plot(part["width"], part["rel_compute"], marker="o", ms=3, label=label)
axes[1].set_xscale("log")
axes[1].set_xlabel("width factor s")
axes[1].set_ylabel("relative compute")
axes[1].grid(alpha=0.3)
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()
lr.pivot_table(index="width", columns="layers", values=["rel_compute", "retention"])

# %% tags=["hide-input"]
probes = chapters.sweep_for(cfg, [model], [dataset], widths=aw, protocols=["knn", "linear"],
                            metrics=False)
pr = slimlib.retention(probes)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for protocol, part in pr.groupby("protocol"):
    axes[0].plot(part["rel_compute"], part["mean"], marker="o", ms=3, label=protocol)
    axes[1].plot(part["rel_compute"], part["retention"], marker="o", ms=3, label=protocol)
for ax, label in zip(axes, ("accuracy (macro)", "retention"), strict=True):
    ax.set_xscale("log")
    ax.set_xlabel("relative compute")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle(f"k-NN vs linear probe: {model}")
plt.tight_layout()
plt.show()

# %% [markdown]
# The paper's linear-probe and k-NN values for three base models at five widths (rebuttal
# "newer FMs" section) for comparison:

# %%
nf = reference.load().query("section == 'rebuttal.newfms' and dataset == 'm-eurosat'").copy()
nf["x"] = nf["x"].astype(float)
nf.pivot_table(index=["series", "s"], columns="protocol", values="y").round(3)
