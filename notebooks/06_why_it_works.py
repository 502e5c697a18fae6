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
# # Why does slimming work? Redundancy of the features
#
# The paper explains slimmability with descriptive measures of the frozen features at each
# width (on the test split here): the **mean feature correlation** (mean |Pearson r| over
# pairs of feature dimensions), the **slope of the explained-variance ratio** (log EVR vs
# log component index; steeper = variance in fewer components) and the **effective
# dimensionality** (participation ratio $(\sum\lambda)^2/\sum\lambda^2$ of the covariance
# eigenvalues). We add **linear CKA** to the full-width features. The sweep writes all four
# as `protocol="features"` rows next to the probe scores.
#
# The paper reports these only as figures for DOFA-L, TerraMind-L and Prithvi-600M (no
# published numbers): e.g. correlation ≈ 0.56 for DOFA-L on m-eurosat at the smallest budget
# falling to near zero at full width, and its EVR slope steepening from ≈ −1.1 (full width)
# to ≈ −3.1 (smallest width). The project page publishes no numbers for these measures
# (`slimlib/book/reference_data/README.md`), so this page has no paper-vs-ours difference table.
#
# **What this page shows**: the four measures for Galileo-nano (real weights) at every width,
# beside the same measures for its random-init controls (thin dashes, the model's colour lightened): a measure that moves the same
# way for random weights describes the architecture and the slicing, not what pretraining
# learned. **What it cannot show**: the paper's three regimes are three different large FMs;
# with one RS architecture this build can only say which regime its curve resembles.

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

import slimlib
from slimlib import book
from slimlib.book import claims, comparison, pages, plotting
from slimlib.sweeping import controls

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
table = book.sweep_for(cfg, cfg.models)
feats = table[table["protocol"] == "features"].copy()
feats["model / dataset"] = feats["model"] + " @ " + feats["dataset"]
plotting.show_table(feats.sort_values(["model", "dataset", "metric", "width"]),
                    "06_redundancy_metrics", max_rows=20, precision=4, compact_columns=[
                        "model", "dataset", "metric", "width", "rel_compute", "value"])

# %% tags=["hide-input"]
ctrl_rows, _, _ = book.controls_for(cfg, cfg.models)
ctrl_feats = ctrl_rows[(ctrl_rows["protocol"] == "features")
                       & controls.is_control(ctrl_rows["model"])]
fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
for ax, metric in zip(axes.flat, ("mean_feature_correlation", "evr_slope",
                                  "participation_ratio", "cka_full"), strict=True):
    plotting.metric_vs_compute(feats, metric, hue="model", style="dataset", ax=ax)
    rnd = ctrl_feats[ctrl_feats["metric"] == metric]
    for (name, _), part in rnd.groupby(["model", "dataset"]):  # lighter: the model's control
        part = part.sort_values("rel_compute")
        ax.plot(part["rel_compute"], part["value"], color=plotting.model_color(name), lw=0.8,
                ls=(0, (4, 2)), label="random-init controls (lighter colour, thin dashes)")
    ax.get_legend().remove()
axes[1, 1].set_ylabel("linear CKA to the full width")
plt.tight_layout()
handles, labels = axes[0, 0].get_legend_handles_labels()
shown = dict(zip(labels, handles, strict=True))  # one entry per label, outside the panels
fig.legend(shown.values(), shown.keys(), fontsize=7, loc="center left",
           bbox_to_anchor=(1.0, 0.5), frameon=False)
plt.show()

# %% [markdown]
# ## Retention vs effective dimensionality
#
# The paper plots retention against the effective dimension d_eff (marker size = width):
# a model whose retention tracks d_eff loses accuracy exactly as its features collapse into
# fewer directions.

# %% tags=["hide-input"]
ret = slimlib.retention(table[table["protocol"] == "knn"])
pr = feats[feats["metric"] == "participation_ratio"].groupby(
    ["model", "dataset", "width"])["value"].mean().rename("d_eff")
joined = ret.join(pr, on=["model", "dataset", "width"])
fig, ax = plt.subplots(figsize=(6.5, 4.5))
datasets_here = sorted(joined["dataset"].unique())
for (model, dataset), part in joined.groupby(["model", "dataset"]):
    ax.scatter(part["d_eff"], part["retention"], s=10 + 60 * part["width"], alpha=0.7,
               color=plotting.model_color(model), label=f"{model} @ {dataset}",
               marker=plotting.kind_style(dataset, index=datasets_here.index(dataset))["marker"])
ax.set_xlabel("effective dimensionality (participation ratio)")
ax.set_ylabel("k-NN retention")
ax.grid(alpha=0.3)
plotting.legend(ax, fontsize=7)
plt.show()
keys = ["model", "dataset"]
summary = joined.groupby(keys).apply(
    lambda t: t["retention"].corr(t["d_eff"], method="spearman"),
    include_groups=False).rename("Spearman(retention, d_eff)").to_frame()
summary["d_eff at s=1"] = joined[joined["width"] == 1.0].set_index(keys)["d_eff"]
smallest = comparison.at_smallest_width(joined, by=keys).set_index(keys)
summary["smallest s"] = smallest["width"]
summary["d_eff at smallest s"] = smallest["d_eff"]
plotting.show_table(summary, "06_retention_vs_deff", missing={
    "Spearman(retention, d_eff)": "undefined: a constant column over the widths"})

# %% [markdown]
# Which regime each curve resembles (`slimlib.book.claims.redundancy_regime`: Spearman of
# retention with d_eff ≥ 0.8 = monotonic; d_eff at 90 % of its maximum by 40 % compute =
# saturating; d_eff varying > 2.5× while retention stays ≥ 0.9 = decoupled), and the claim:

# %%
regimes = {f"{m} @ {d}": claims.redundancy_regime(part)
           for (m, d), part in table.groupby(["model", "dataset"])}
plotting.show_table(pd.Series(regimes, name="regime").rename_axis("model @ dataset").to_frame(),
                    "06_regimes")
plotting.show_table(claims.evaluate(claims.Evidence(
    rs=table[table["protocol"] != "features"], features=table[table["protocol"] == "features"],
    pretrained=cfg.pretrained), claims.select("regimes")), "06_claims",
    compact_columns=["claim", "paper", "this build", "verdict", "why"])
