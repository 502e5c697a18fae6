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
# # Learned slimmable training vs post-hoc slimming
#
# Can training for slimmability help? The paper pretrains ViT-B encoders with MoCo v3 and
# MAE, once regularly and once slimmably (sandwich rule: full, minimal and random widths per
# step, with in-place distillation from the full width), slims all four post hoc and
# compares k-NN curves. Its finding: slimmable training helps the contrastive objective
# (MoCo) but not MAE. Here the same comparison runs on `slimlib`'s tiny MoCo and MAE models,
# each pretrained regularly and slimmably on the embedded EuroSAT RGB images.
#
# **These are slimlib's miniatures, not foundation models**: 4-block ViTs pretrained here in
# one to two minutes, whose full-width k-NN beats their own random init by only 4–6 points
# (`docs/pretraining.md`). This chapter is the one place they belong: a comparison of regular
# and slimmable training needs both trainings of one architecture, which no published
# checkpoint offers. **What it cannot show**: whether the paper's ViT-B finding transfers to
# well-trained encoders; the verdict below is about the miniatures.

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
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import slimlib
from slimlib import chapters, plotting, profiles, reference

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

# %%
pairs = cfg.slimmable_pairs
names = [m for pair in pairs for m in pair]
table = chapters.sweep_for(cfg, names)
ret = slimlib.retention(table[table["protocol"] == "knn"])
kind = {m: ("slimmable" if m == s else "regular") for r, s in pairs for m in (r, s)}
ret["training"] = ret["model"].map(kind)
ret.groupby(["model", "training"]).size().rename("widths").to_frame()

# %% tags=["hide-input"]
for dataset, part in ret.groupby("dataset"):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for model, curve in part.groupby("model"):
        curve = curve.sort_values("rel_compute")
        ls = "-" if kind[model] == "slimmable" else "--"
        axes[0].plot(curve["rel_compute"], curve["mean"], ls=ls, marker="o", ms=3, label=model)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("relative compute")
    axes[0].set_ylabel("k-NN accuracy (macro)")
    axes[0].set_title(f"this build: {dataset}")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    native = reference.posthoc("native")
    native = native[native["dataset"] == "m-eurosat"]
    plotting.paper_overlay(native, y="y", ax=axes[1], ls="-")
    axes[1].set_ylabel("k-NN accuracy (macro)")
    axes[1].set_title(f"ViT-B on m-eurosat — {plotting.PAPER_LABEL}")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Gain of slimmable over regular training, per width
#
# Difference of k-NN accuracy (slimmable − regular) at each width, ours and the paper's
# (m-eurosat; the paper's points are matched by their order, i.e. the same width).

# %% tags=["hide-input"]
rows = []
for regular, slimmable in pairs:
    a = ret[ret["model"] == regular].set_index(["dataset", "width"])
    b = ret[ret["model"] == slimmable].set_index(["dataset", "width"])
    d = (b["mean"] - a["mean"]).rename("slimmable − regular").reset_index()
    d["pair"] = f"{slimmable} vs {regular}"
    d["rel_compute (regular)"] = a["rel_compute"].values
    rows.append(d)
gain = pd.concat(rows)
native = reference.posthoc("native")
native = native[native["dataset"] == "m-eurosat"].copy()
native["method"] = native["series"].str.split(":").str[0]
native["training"] = np.where(native["series"].str.contains("slimmable"), "slimmable", "regular")
native["point"] = native.groupby("series").cumcount()
pg = native.pivot_table(index=["method", "point"], columns="training", values="y")
pg["slimmable − regular (paper)"] = pg["slimmable"] - pg["regular"]
fig, ax = plt.subplots(figsize=(7, 4))
for pair, part in gain.groupby("pair"):
    ax.plot(part["width"], part["slimmable − regular"], marker="o", label=f"{pair} (this build)")
widths31 = sorted(slimlib.WIDTHS)
for method, part in pg.reset_index().groupby("method"):
    ax.plot([widths31[i] for i in part["point"]], part["slimmable − regular (paper)"], ls="--",
            marker="s", ms=3, label=f"{method} ViT-B, m-eurosat — {plotting.PAPER_LABEL}")
ax.axhline(0, color="0.5", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("width factor s")
ax.set_ylabel("accuracy gain of slimmable training")
ax.grid(alpha=0.3)
ax.legend(fontsize=6)
plt.show()
gain.pivot_table(index="width", columns="pair", values="slimmable − regular")

# %% [markdown]
# The claim this chapter owns, computed (mean retention gain of slimmable training over
# widths ≤ 0.25, ± 2 SE; the same statistic as the introduction's table):

# %%
from slimlib import claims

claims.evaluate(claims.Evidence(slimmable=table, pairs=tuple(map(tuple, pairs)),
                                pretrained=cfg.pretrained),
                claims.select("slimmable-moco-not-mae"))[
    ["claim", "paper", "this build", "± (2 SE)", "verdict", "why"]]
