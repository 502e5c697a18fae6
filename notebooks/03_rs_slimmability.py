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
# compute. In the default profile the encoder is **Galileo-nano** (Tseng et al. 2025), a real
# RS foundation model with its authors' published weights, in its 13-band mode on EuroSAT
# 13-band and in its RGB-only mode (`galileo-nano-rgb`: only the RGB channel group gets
# tokens) on EuroSAT RGB, UC Merced and the RGB rendering of EuroSAT 13-band. The paper's
# curves for its ten foundation models on m-eurosat are drawn under ours, on the paper's
# FLOP convention, with a difference table per width.
#
# **What this page shows**: Galileo-nano's retention against compute beside two controls the
# paper does not have: the same architecture with random weights (several init seeds,
# through the same sweep) and the pretrained model's **embedding-only floor** (the mean of the
# embedding tokens it hands its first block, no transformer block run; `docs/evaluation.md`). **What it cannot show**: the paper's models and GEO-Bench data (the `paper`
# profile needs a GPU and downloads), and — since Galileo-nano has d_k = 16 — widths below
# 1/16 still keep one dimension per head, so this model cannot go below ≈ 4–5 % of compute.
# EuroSAT 13-band has only 54 test images (SE ≈ 0.06 per accuracy): its numbers carry wide
# intervals; EuroSAT RGB gives the tight ones.

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
from slimlib import book
from slimlib.book import comparison, pages, plotting, reference

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
table = book.sweep_for(cfg, cfg.models)
probe = table[table["protocol"] != "features"]
ret = comparison.with_paper_axis(slimlib.retention(probe), profile=cfg)
print(f"{len(table)} rows ({len(probe)} probe rows) from {table.attrs.get('path')}")
plotting.show_table(ret, "03_retention_rows", max_rows=5, compact_columns=[
    "model", "dataset", "protocol", "width", "rel_compute", "rel_compute_paper", "mean", "std",
    "n_seeds", "retention"])

# %% tags=["remove-input"]
from slimlib.book.runs import n_test_sentence

display(Markdown(n_test_sentence(table)))

# %% [markdown]
# ## Absolute metric and retention vs relative compute (all widths)
#
# x-axis: this build's FLOP count (attention products included); the overlay on the paper's
# curves further down uses the paper's convention.

# %% tags=["hide-input"]
for dataset, part in ret.groupby("dataset"):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plotting.retention_vs_compute(part, hue="model", style="protocol", y="mean", ax=axes[0])
    plotting.retention_vs_compute(part, hue="model", style="protocol", ax=axes[1])
    axes[0].get_legend().remove()
    axes[0].set_ylabel(part["metric"].iloc[0].replace("_", " "))
    fig.suptitle(f"{dataset}: this build")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## With its controls
#
# Left: accuracy (± 1 SE), the random-init controls (mean and min–max over init seeds) and
# the embedding-only floor. Right: retention of the pretrained model and of the random-init
# controls (each relative to its own width-1 value). The controls run at the profile's
# control widths.

# %%
rows, floor, cmp = book.controls_for(cfg, cfg.models)
knn_cmp = cmp[cmp["protocol"] == "knn"]
for _, part in knn_cmp.groupby(["model", "dataset"]):
    plotting.with_controls(part)
    plt.show()

# %% [markdown]
# At the smallest control width: retention, retention above random init and the share of the
# pretrained gain over the embedding-only floor that is kept, $(\mathrm{acc}(s) - \mathrm{floor})
# / (\mathrm{acc}(1) - \mathrm{floor})$ (not defined, with the reason in `gain_kept_note`, where
# the floor is degenerate or not beaten); "reading" columns say whether the difference's 95 %
# interval excludes 0 (column `interval`: paired image bootstrap, or the binomial fallback).

# %%
from slimlib.book import claims
from slimlib.sweeping import controls

smallest_ctrl = controls.at_smallest(knn_cmp)
plotting.show_table(smallest_ctrl, "03_at_smallest_control_width", compact_columns=[
    "model", "dataset", "width", "rel_compute", "value", "retention", "random_mean",
    "above_random", "vs random init", "floor", "gain_kept", "gain_kept_note",
    "vs embedding-only floor", "interval"],
    missing={"gain_kept": "not defined: see gain_kept_note (a degenerate floor, or a "
                          "full-width model that does not beat its floor)"})

# %%
_RELATION = {"above": "above", "below": "below", "within noise": "not distinguishable from"}


def _versus(r, what, col, ref):
    """'above its floor (0.467): +0.093 [+0.046, +0.144]' from a row's paired interval."""
    return (f"{_RELATION.get(r[f'vs {what}'], r[f'vs {what}'])} {what} ({r[ref]:.3f}): "
            f"{r[col]:+.3f} [{r[f'{col}_lo']:+.3f}, {r[f'{col}_hi']:+.3f}]")


display(Markdown(" ".join(
    f"**{r.model} on {r.dataset}** at s = {r.width:g} ({r.rel_compute:.1%} of compute): "
    f"accuracy {r.value:.3f}; {_versus(r, 'embedding-only floor', 'above_floor', 'floor')}; "
    f"{_versus(r, 'random init', 'above_random', 'random_mean')} "
    f"({r.interval})." for _, r in smallest_ctrl.iterrows())))

# %% [markdown]
# ## Our curves over the paper's
#
# The paper's k-NN curves of its ten RS foundation models on m-eurosat
# (`slimlib.book.reference.posthoc()`, dashed) with this build's k-NN curves drawn over them, both
# against relative compute **in the paper's FLOP convention** (no attention products, norms
# counted; `slimlib.book.comparison.with_paper_axis`). The models and the data differ (the paper's
# ViT-B/L FMs on GEO-Bench m-eurosat; this build's models on its own data), so the overlay
# shows where our curves lie in the published range, not a reproduction.

# %% tags=["hide-input"]
paper = reference.posthoc()
paper_eu = paper[(paper["dataset"] == "m-eurosat") & (paper["protocol"] == "knn")]
knn = ret[ret["protocol"] == "knn"].assign(run=lambda t: t["model"] + " @ " + t["dataset"])
fig, axes = plt.subplots(2, 1, figsize=(8, 8.5))  # stacked: each panel keeps the page width
plotting.ours_vs_paper(knn, paper_eu, y="mean", paper_y="y", hue="model", style="dataset",
                       ax=axes[0], ylabel="k-NN accuracy (macro)", paper_alpha=0.45)
plotting.ours_vs_paper(knn, paper_eu, hue="model", style="dataset", ax=axes[1],
                       paper_alpha=0.45, paper_legend="one")
axes[0].get_legend().remove()
fig.suptitle(f"this build (solid) over m-eurosat, k-NN — {plotting.PAPER_LABEL} (dashed)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Difference to the paper, per width
#
# Our k-NN retention minus the paper's mean retention over its ten models on m-eurosat at the
# same width (aligned by width value, `slimlib.book.comparison.paper_difference`), with the range
# of the ten published models beside it. The interval is ± 2 SE over our probe seeds where the
# profile has several seeds (the paper published no spread).

# %%
paper_mean = reference.posthoc_mean("m-eurosat", protocol="knn")
diff = pd.concat([comparison.paper_difference(part, paper_mean, paper_extra=[
    "retention_min", "retention_max"]).assign(run=run)
    for run, part in knn.groupby("run")], ignore_index=True)
diff["inside published range"] = diff["ours"].between(diff["paper retention_min"],
                                                      diff["paper retention_max"])
first = ["run", "width", "paper", "ours", "difference", "interval"]
plotting.show_table(diff, "03_difference_to_paper", compact_columns=[
    *[c for c in first if c in diff], *[c for c in diff if c not in first]], missing={
    c: "no interval: one probe seed in this profile" for c in ("diff_lo", "diff_hi")})

# %% [markdown]
# ## Retention at the smallest budget
#
# The paper's headline: at their smallest width (0.8–6.4 % of compute) RS FMs keep about
# 85 % of their k-NN accuracy on average over four classification datasets.

# %%
ours_small = claims.smallest_width_retention(probe[probe["protocol"] == "knn"])
plotting.show_table(ours_small, "03_smallest_width_retention")

# %%
paper_small = reference.smallest_budget_retention()
display(Markdown(f"**{plotting.PAPER_LABEL}**: k-NN retention at each model's smallest width"))
plotting.show_table(paper_small, "03_paper_smallest_width_retention",
                    missing="the paper published no value for this model and dataset")

# %% [markdown]
# Our smallest-width retention minus the paper's headline statistic, the mean over its eight
# Fig. 1 RS FMs × four datasets (`reference.FIG1_SERIES`), ± 2 SE of ours (binomial SE of
# both accuracies; the paper's smallest widths sit at other compute, 0.8–6.4 %):

# %%
published = float(reference.smallest_budget_retention(series=reference.FIG1_SERIES).loc[
    "mean over models", "mean"])
plotting.show_table(ours_small.assign(
    paper=published, difference=ours_small["retention"] - published,
    diff_lo=lambda t: t["difference"] - 2 * t["se"],
    diff_hi=lambda t: t["difference"] + 2 * t["se"]), "03_smallest_width_vs_paper")

# %%
verdicts = claims.evaluate(claims.Evidence(rs=probe, controls=cmp, pretrained=cfg.pretrained,
                                           real_rs=claims.is_real_rs(cfg.models),
                                           control_rows=rows, floor=floor, profile=cfg),
                           claims.select("rs-85", "rs-above-controls"))
plotting.show_table(verdicts, "03_claims", compact_columns=["claim", "paper", "this build", "interval", "criterion", "verdict", "why", "indication"])
