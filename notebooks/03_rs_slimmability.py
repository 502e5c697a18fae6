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
# # Slimmability of remote-sensing foundation models
#
# The paper's main experiment: slim each pretrained RS encoder post hoc to every width,
# extract frozen features of a train and a test split, score them with k-NN ($k=5$) and
# report the absolute metric and the retention metric$(s)$/metric$(1)$ against relative
# compute. Here the encoders are the tiny RS models `slimlib` pretrains on the embedded
# EuroSAT RGB data (default profile); the paper's curves for its ten foundation models on
# m-eurosat are the twin panel.

# %% tags=["parameters"]
# Parameters (papermill / `python -m slimlib run ... -p NAME VALUE`); None = from the profile.
profile = None  # "smoke" | "default" | "paper"; None: $SLIMLIB_PROFILE or "default"
models = None  # RS encoders (registry names), e.g. ["rs-moco-tiny"]
datasets = None  # RS datasets (registry names); None: eurosat-rgb with a data root, else synthetic
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
table = chapters.sweep_for(cfg, cfg.models)
probe = table[table["protocol"] != "features"]
ret = slimlib.retention(probe)
print(f"{len(table)} rows ({len(probe)} probe rows) from {table.attrs.get('path')}")
ret.head()

# %% [markdown]
# ## Absolute metric and retention vs relative compute

# %% tags=["hide-input"]
for dataset, part in ret.groupby("dataset"):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (model, protocol), curve in part.groupby(["model", "protocol"]):
        curve = curve.sort_values("rel_compute")
        axes[0].plot(curve["rel_compute"], curve["mean"], marker="o", ms=3,
                     label=f"{model} ({protocol})")
        axes[1].plot(curve["rel_compute"], curve["retention"], marker="o", ms=3,
                     label=f"{model} ({protocol})")
    axes[0].set_ylabel(part["metric"].iloc[0].replace("_", " "))
    axes[1].set_ylabel("retention")
    axes[1].axhline(1, color="0.6", ls=":")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("relative compute")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: this build")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## The paper's curves (twin panel)
#
# The same quantities as published for the ten RS foundation models on m-eurosat (k-NN,
# macro accuracy), from `slimlib.reference.posthoc()`.

# %% tags=["hide-input"]
paper = reference.posthoc()
paper_eu = paper[(paper["dataset"] == "m-eurosat") & (paper["protocol"] == "knn")]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
plotting.paper_overlay(paper_eu, y="y", ax=axes[0], ls="-")
plotting.paper_overlay(paper_eu, y="retention", ax=axes[1], ls="-")
axes[0].set_ylabel("accuracy (macro)")
axes[0].get_legend().remove()
axes[1].legend(fontsize=5, loc="lower right")
fig.suptitle(f"m-eurosat, k-NN — {plotting.PAPER_LABEL}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Retention at the smallest budget
#
# The paper's headline: at their smallest width (0.8–6.4 % of compute) RS FMs keep about
# 85 % of their k-NN accuracy on average over four classification datasets.

# %%
smallest = ret.loc[ret.groupby(["model", "dataset", "protocol"])["width"].idxmin()]
ours_small = smallest[["model", "dataset", "protocol", "width", "rel_compute", "mean", "full",
                       "retention"]].rename(columns={"mean": "metric at s", "full": "metric at s=1"})
ours_small

# %%
cls_sets = ["m-eurosat", "m-brick-kiln", "m-so2sat", "m-bigearthnet"]
p = paper[(paper["protocol"] == "knn") & paper["dataset"].isin(cls_sets)]
p_small = p.loc[p.groupby(["series", "dataset"])["x"].idxmin()]
paper_small = p_small.pivot_table(index="series", columns="dataset", values="retention")
paper_small["mean"] = paper_small.mean(axis=1)
paper_small.loc["mean over models"] = paper_small.mean()
display(Markdown(f"**{plotting.PAPER_LABEL}**: k-NN retention at each model's smallest width"))
paper_small

# %%
summary = pd.DataFrame({
    "this build: mean retention at smallest width": [ours_small["retention"].mean()],
    "paper: mean over RS FMs x 4 datasets": [paper_small.loc["mean over models", "mean"]],
})
summary
