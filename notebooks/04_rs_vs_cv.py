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
# # Remote sensing vs computer vision (Fig. 1)
#
# The paper's Fig. 1 contrasts RS foundation models with computer-vision models slimmed the
# same way. **(a)** retention vs relative compute, pooled over models × datasets × seeds in
# 10 % compute bins (mean ± 2 SD); the CV models are evaluated on natural images (ImageNet
# subsets in the paper, CIFAR-10 here). **(b)** absolute accuracy of RS and CV models on the
# *same* RS dataset, to separate the evaluation domain from the pretraining domain.
#
# **What this page shows**: the RS side is Galileo-nano (a real RS foundation model, its
# authors' weights) on the embedded RS data, pooled over its model modes × datasets × seeds
# like the paper, beside the pooled random-init controls of the same architecture. **What it
# cannot show**: the paper's CV models (ImageNet MAE/DINOv2 ViT-B need downloads): the CV side
# here is slimlib's **tiny self-pretrained miniatures** (MoCo/MAE on 3,000 CIFAR-10 images),
# which beat their own random init by only a few points, so the RS-vs-CV contrast on this
# page compares a real FM with miniatures and says nothing about ImageNet FMs.

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

from slimlib import chapters, claims, controls, plotting, profiles, reference

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
rs = chapters.sweep_for(cfg, cfg.models)  # RS models on RS data (shared with chapter 3)
cv_own = chapters.sweep_for(cfg, cfg.cv_models, cfg.cv_datasets)  # CV models on natural images
cv_rs = chapters.sweep_for(cfg, cfg.cv_models)  # CV models on the RS data (Fig. 1b)
ctrl_rows, _, ctrl_cmp = chapters.controls_for(cfg, cfg.models)
ctrl = ctrl_rows[ctrl_rows["model"].map(lambda m: controls.split_label(m)[1] is not None)]
knn = {name: t[t["protocol"] == "knn"] for name, t in
       (("rs", rs), ("cv_own", cv_own), ("cv_rs", cv_rs), ("rs_random", ctrl))}
rs_label = "RS FM (Galileo-nano)" if claims.is_real_rs(cfg.models) else "RS tiny models"
{name: len(t) for name, t in knn.items()}

# %% [markdown]
# ## Fig. 1a: retention vs compute in 10 % bins

# %% tags=["hide-input"]
ours = {
    f"{rs_label} @ {', '.join(sorted(knn['rs']['dataset'].unique()))}": plotting.bin_stats(
        plotting.per_run_retention(knn["rs"])),
    "control: same RS architecture, random init": plotting.bin_stats(
        plotting.per_run_retention(knn["rs_random"])),
}
for model, part in knn["cv_own"].groupby("model"):
    ours[f"CV {model} @ {', '.join(cfg.cv_datasets)}"] = plotting.bin_stats(
        plotting.per_run_retention(part))
fig1a_paper = reference.load().query("section == 'fig1a'")
ax = plotting.fig1a(ours, fig1a_paper)
ax.set_title("Fig. 1a: this build (solid) and the paper (dashed)")
ax.figure.set_size_inches(8, 5)
plt.show()

# %%
bins = pd.concat({k: v.set_index("bin")["mean"] for k, v in ours.items()}, axis=1)
pm = plotting.paper_fig_parts(fig1a_paper)[0].pivot_table(index="x", columns="series",
                                                          values="y")
pm.columns = [f"{c} — paper" for c in pm.columns]
pm.index.name = "bin"
bins.join(pm, how="outer")

# %% [markdown]
# ## Fig. 1b: RS and CV models on the same RS data

# %% tags=["hide-input"]
same_data = pd.concat([knn["rs"].assign(group=rs_label),
                       knn["cv_rs"].assign(group="CV tiny models (miniatures)"),
                       knn["rs_random"].assign(group="RS architecture, random init")])
acc_bins = {g: plotting.bin_stats(part, y="value") for g, part in same_data.groupby("group")}
fig1b_paper = reference.load().query("section == 'fig1b'")
fig, ax = plt.subplots(figsize=(8, 5))
for label, stats in acc_bins.items():
    (line,) = ax.plot(stats["bin"], stats["mean"], marker="o", label=f"{label} (this build)")
    ax.fill_between(stats["bin"], stats["lo"], stats["hi"], color=line.get_color(), alpha=0.2)
mean_p, bands_p = plotting.paper_fig_parts(fig1b_paper)
for name, part in mean_p.groupby("series"):
    ax.plot(part["x"], part["y"], ls="--", marker="s", ms=3,
            label=f"{name} — {plotting.PAPER_LABEL}")
ref = fig1b_paper[fig1b_paper["x"].isna() | (fig1b_paper["x"].astype(str) == "")]
for _, r in ref.iterrows():
    ax.axhline(float(r["y"]), color="0.4", ls="-.", lw=0.8,
               label=f"{r['series']} at 100 % — {plotting.PAPER_LABEL}")
ax.set_xlabel("relative compute bin")
ax.set_ylabel("accuracy (macro)")
ax.set_title(f"Fig. 1b: same RS data ({', '.join(cfg.datasets)}; paper: m-eurosat)")
ax.grid(alpha=0.3)
ax.legend(fontsize=6)
plt.show()

# %% [markdown]
# Retention at the smallest width, per model and evaluation data:

# %%
all_knn = pd.concat([knn["rs"], knn["cv_own"], knn["cv_rs"]]).drop_duplicates(
    subset=["model", "dataset", "seed", "width", "protocol", "metric"])
claims.smallest_width_retention(all_knn).round(3)

# %% [markdown]
# The claims this chapter owns, computed (the same statistics as the introduction's table):

# %%
ev = claims.Evidence(rs=knn["rs"], cv_own=knn["cv_own"], cv_rs=knn["cv_rs"],
                     pretrained=cfg.pretrained, real_rs=claims.is_real_rs(cfg.models))
claims.evaluate(ev, claims.select("v1-sevenfold", "cv-10-33", "cv-74-vs-82-95"))[
    ["claim", "paper", "this build", "± (2 SE)", "verdict", "why"]]
