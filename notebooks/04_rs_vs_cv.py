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
# shown beside their own random-init control (the table after Fig. 1a), so the RS-vs-CV
# contrast on this page compares a real FM with miniatures and says nothing about ImageNet FMs.

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

from slimlib import book
from slimlib.book import claims, comparison, pages, plotting, reference
from slimlib.sweeping import controls

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
rs = book.sweep_for(cfg, cfg.models)  # RS models on RS data (shared with chapter 3)
cv_own = book.sweep_for(cfg, cfg.cv_models, cfg.cv_datasets)  # CV models on natural images
cv_rs = book.sweep_for(cfg, cfg.cv_models)  # CV models on the RS data (Fig. 1b)
ctrl_rows, _, ctrl_cmp = book.controls_for(cfg, cfg.models)
ctrl = ctrl_rows[controls.is_control(ctrl_rows["model"])]
# the CV curves' own random-init control: control widths only, the first two init seeds
cv_ctrl_rows, cv_floor, cv_ctrl_cmp = book.controls_for(
    cfg, cfg.cv_models, cfg.cv_datasets, init_seeds=cfg.init_seeds[:2])
cv_ctrl = cv_ctrl_rows[controls.is_control(cv_ctrl_rows["model"])]
knn = {name: t[t["protocol"] == "knn"] for name, t in
       (("rs", rs), ("cv_own", cv_own), ("cv_rs", cv_rs), ("rs_random", ctrl),
        ("cv_random", cv_ctrl))}
rs_label = "RS FM (Galileo-nano)" if claims.is_real_rs(cfg.models) else "RS tiny models"
random_label = f"{rs_label}: same architecture, random init"  # drawn in its lighter colour
print("k-NN rows: " + ", ".join(f"{name} {len(t)}" for name, t in knn.items()))

# %% [markdown]
# ## Fig. 1a: retention vs compute in 10 % bins
#
# Bins are taken on relative compute **in the paper's FLOP convention** (no attention
# products, norms counted; `slimlib.book.comparison.with_paper_axis`), the convention of the
# published bins, so the same width lands in the same bin on both sides.

# %% tags=["hide-input"]
runs = {name: comparison.with_paper_axis(plotting.per_run_retention(t), profile=cfg)
        for name, t in knn.items()}


def bins(rows, y="retention"):
    return plotting.bin_stats(rows, x="rel_compute_paper", y=y)


rs_key = f"{rs_label} @ {', '.join(sorted(knn['rs']['dataset'].unique()))}"
ours = {rs_key: bins(runs["rs"]),
        random_label: bins(runs["rs_random"])}
for model, part in runs["cv_own"].groupby("model"):
    ours[f"CV {model} @ {', '.join(cfg.cv_datasets)}"] = bins(part)
# each CV miniature's own random-init control (control widths only), beside its curve
cv_random_base = runs["cv_random"]["model"].map(lambda m: controls.split_label(m)[0])
for base, part in runs["cv_random"].groupby(cv_random_base):
    ours[f"CV {base}: same architecture, random init"] = bins(part)
fig1a_paper = reference.load().query("section == 'fig1a'")
ax = plotting.fig1a(ours, fig1a_paper)
ax.set_xlabel("relative compute bin, paper convention (floor(10·FLOPs(s)/FLOPs(1))/10)")
ax.set_title("Fig. 1a: this build (solid) and the paper (dashed)")
ax.figure.set_size_inches(8, 5)
plt.show()

# %% [markdown]
# The same RS rows in the **authors' own convention** (`slimlib.book.plot_tables.
# first_row_retention`): the generator of the paper's project page divides every row by the
# *first* width-1 row of its curve (seeds pooled) and bins floor(10·compute)/10 with mean ± 2 SD
# over rows; the book divides each seed by its own width-1 value. Side by side, per bin:

# %%
from slimlib.book import plot_tables

authors_rs = comparison.with_paper_axis(plot_tables.first_row_retention(knn["rs"]), profile=cfg)
pd.concat({"book": bins(runs["rs"]).set_index("bin")[["mean", "sd", "n"]],
           "authors' convention": bins(authors_rs).set_index("bin")[["mean", "sd", "n"]]},
          axis=1).round(3)

# %% [markdown]
# Ours − paper per bin (`slimlib.book.comparison.paper_difference`, aligned by bin value): the RS
# curve and its random-init control against the paper's RS FMs, and each CV miniature against
# the paper's CV model of the same objective on ImageNet-10 (MAE → "CV MAE", a MoCo miniature
# has no published counterpart and is left out). Models and data differ: the difference says
# how far apart the curves lie, not whether ours reproduces theirs. Interval: ± 2 SE of our
# bin mean over the runs in the bin; the paper's bins show ± 2 SD bands but no SE.

# %%
paper_bins = reference.fig1_bins("fig1a")
pairs = {rs_key: "RS FMs @ 4 RS datasets (avg.)",
         random_label: "RS FMs @ 4 RS datasets (avg.)",
         **{k: "CV MAE @ ImageNet-10" for k in ours if k.startswith("CV ") and "mae" in k},
         **{k: "CV DINOv2 @ ImageNet-10" for k in ours if k.startswith("CV ") and "dino" in k}}
fig1a_diff = pd.concat([comparison.paper_difference(
    ours[k], paper_bins[paper_bins["series"] == p], on="bin", value="mean").assign(
    ours_curve=k, paper_curve=p) for k, p in pairs.items()], ignore_index=True)
plotting.show_table(fig1a_diff, "04_fig1a_difference", compact_columns=[
    c for c in ("ours_curve", "paper_curve", "bin", "paper", "ours", "difference", "interval")
    if c in fig1a_diff], missing="no interval: a single run in the bin")

# %% [markdown]
# **The CV curves' control.** Each CV model beside the random-init network of its own
# architecture (`book.controls_for` at the profile's control widths, two init seeds) and
# its embedding-only floor, on its own natural images, k-NN. "above random init" is the
# pretrained accuracy minus the random-init mean, with its interval (column `interval` says
# whether it is a paired image bootstrap or the binomial fallback).

# %%
cv_control_table = cv_ctrl_cmp[cv_ctrl_cmp["protocol"] == "knn"][
    ["model", "dataset", "width", "value", "random_mean", "above_random", "above_random_lo",
     "above_random_hi", "retention", "random_retention", "floor", "interval"]]
cv_control_table.round(3)

# %% [markdown]
# ## Fig. 1b: RS and CV models on the same RS data
#
# Accuracy is not comparable across datasets with different numbers of classes (chance is
# 1/10 on EuroSAT, 1/21 on UC Merced), so every dataset is its own curve (colour: the model
# group; line style: the dataset); nothing is pooled across datasets.

# %% tags=["hide-input"]
same_data = pd.concat([runs["rs"].assign(group=rs_label),
                       runs["cv_rs"].assign(group="CV tiny models (miniatures)"),
                       runs["rs_random"].assign(group=random_label)])
acc_bins = {(g, d): bins(part, y="value")
            for (g, d), part in same_data.groupby(["group", "dataset"])}
ax = plotting.fig1b(acc_bins, reference.fig1_bins("fig1b"),
                    refs=reference.fig1_reference_lines())
ax.set_xlabel("relative compute bin, paper convention")
ax.set_title("Fig. 1b: same RS data, one curve per dataset (paper: m-eurosat)")
ax.figure.set_size_inches(8, 5)
plt.show()

# %% [markdown]
# Ours − paper per bin and dataset for Fig. 1b (accuracy; our data are this build's RS
# datasets, the paper's is GEO-Bench m-eurosat, 10 classes like EuroSAT; our CV side pools the
# profile's CV miniatures, the paper's is its ImageNet MAE ViT-B):

# %%
fig1b_paper = reference.fig1_bins("fig1b")
pairs_b = {rs_label: "RS FMs @ m-eurosat",  # the paper's CV curve here is its MAE
           "CV tiny models (miniatures)": "CV MAE @ m-eurosat"}
fig1b_diff = pd.concat([comparison.paper_difference(
    stats, fig1b_paper[fig1b_paper["series"] == pairs_b[g]], on="bin", value="mean").assign(
    ours_curve=g, dataset=d, paper_curve=pairs_b[g])
    for (g, d), stats in acc_bins.items() if g in pairs_b], ignore_index=True)
plotting.show_table(fig1b_diff, "04_fig1b_difference", compact_columns=[
    c for c in ("ours_curve", "dataset", "paper_curve", "bin", "paper", "ours", "difference",
                "interval") if c in fig1b_diff], missing="no interval: a single run in the bin")

# %% [markdown]
# Retention at the smallest width, per model and evaluation data:

# %%
all_knn = pd.concat([knn["rs"], knn["cv_own"], knn["cv_rs"]]).drop_duplicates(
    subset=["model", "dataset", "seed", "width", "protocol", "metric"])
plotting.show_table(claims.smallest_width_retention(all_knn), "04_smallest_width_retention")

# %% [markdown]
# The claims this chapter owns, computed (the same statistics as the introduction's table):

# %%
ev = claims.Evidence(rs=knn["rs"], cv_own=knn["cv_own"], cv_rs=knn["cv_rs"],
                     pretrained=cfg.pretrained, real_rs=claims.is_real_rs(cfg.models),
                     profile=cfg)
plotting.show_table(claims.evaluate(ev, claims.select("v1-sevenfold", "cv-10-33",
                                                      "cv-74-vs-82-95")),
                    "04_claims", compact_columns=["claim", "paper", "this build", "interval", "criterion", "verdict", "why", "indication"])
