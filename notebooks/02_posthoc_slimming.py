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
# # Post-hoc slimming and its compute
#
# One width factor $s$ slims every block of a ViT the same way: each attention head keeps
# its first $d_k' = \max(1,\lfloor s\,d_k\rfloor)$ query/key/value dimensions (softmax scale
# $1/\sqrt{d_k'}$), each FFN keeps its first $d_h' = \max(1,\lfloor s\,d_h\rfloor)$ hidden
# units; the patch embedding, norms and the residual width $d$ are untouched. The figure
# below is drawn by `slimlib.book.plotting.architecture_diagram` for the paper's SSL4EO ViT-S/16
# (the paper's Fig. 2 shows the same block).
#
# **What it shows**: what one width keeps, FLOPs and parameters per width of this build's
# models under both FLOP conventions (attention products counted, and the paper's: no
# attention matmuls, norms counted), the compute floor of the paper's architectures (built
# with random weights: compute depends on the architecture only, so these are exact), the
# attention-only / FFN-only floors, and our relative compute against the paper's published
# values with the differences. **What it cannot show**: nothing on this page is about
# accuracy; where our count of a paper model does not match the published one, the table
# shows the difference but not its cause.

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
from slimlib.book import comparison, pages, plotting, reference

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %% [markdown]
# Test images: none. Every number on this page is counted from the models' structure (FLOPs,
# parameters, kept dimensions), not measured on images; the accuracy chapters say how many test
# images each of their scores rests on.

# %% tags=["hide-input"]
from slimlib import models

vit_s = models.load("ssl4eo-vits16-moco", pretrained=False)
block = slimlib.describe(vit_s).iloc[0]
fig = plotting.architecture_diagram(0.25, d=int(block["d"]), heads=int(block["heads"]),
                                    d_k=int(block["d_k"]), d_h=int(block["d_h"]))
plt.show()

# %% [markdown]
# ## What one width keeps
#
# `slimlib.describe` reports every block of a slimmed copy; the encoder is physically
# narrower (the parameter count drops), not masked.

# %%
rows = []
for s in (1.0, 0.5, 0.25, 0.1, 0.01):
    small = slimlib.slim(vit_s, s)
    d = slimlib.describe(small).iloc[0]
    rows.append({"width s": s, "d": int(d["d"]), "heads": int(d["heads"]), "d_k'": int(d["d_k"]),
                 "d_h'": int(d["d_h"]), "softmax scale": float(d["scale"]),
                 "params (M)": slimlib.params(small) / 1e6})
plotting.show_table(pd.DataFrame(rows), "02_what_one_width_keeps", precision=4)

# %% [markdown]
# ## FLOPs and parameters per width of the models in this build
#
# FLOPs are counted with `torch.utils.flop_counter` at each model's native input, batch 1.
# Two counts are shown: this build's default (attention products $QK^\top$, $AV$ included,
# `slimlib.flops`) and the paper's convention (`slimlib.book.reference.PAPER_CONVENTION`: no
# attention products, LayerNorms counted, as fvcore counts them), which every overlay on the
# paper's published values uses as its x-axis.

# %% tags=["hide-input"]
tiny = pd.concat([book.compute_table_cached(m, cfg.widths, profile=cfg)
                  for m in dict.fromkeys(cfg.models + cfg.cv_models)], ignore_index=True)
tiny = comparison.with_paper_axis(tiny, profile=cfg)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
plotting.compute_curves({m: t for m, t in tiny.groupby("model")}, ax=axes[0])
plotting.compute_curves({m: t.assign(rel_compute=t["rel_compute_paper"])
                         for m, t in tiny.groupby("model")}, ax=axes[1])
axes[0].get_legend().remove()
axes[0].set_title("this build's count", fontsize=9)
axes[1].set_title("paper convention", fontsize=9)
plt.tight_layout()
plt.show()
small = comparison.at_smallest_width(tiny, by=["model"]).set_index("model")
full = tiny[tiny["width"] == 1.0].set_index("model")
plotting.show_table(pd.DataFrame({
    "GFLOPs at s=1": full["flops"] / 1e9, "params at s=1 (M)": full["params"] / 1e6,
    "smallest width": small["width"], "compute floor (attention counted)": small["rel_compute"],
    "compute floor (paper convention)": small["rel_compute_paper"]}), "02_build_models_compute",
    precision=4)

# %% [markdown]
# ## The compute floor of the paper's models
#
# The paper's foundation models are built here with random weights (`pretrained=False`):
# FLOPs do not depend on the weights. The residual stream, the patch embedding and the
# token-mixing products keep a floor that no width removes. Each model is counted under three
# conventions: attention products counted, not counted, and the paper's (not counted, norms
# counted; `docs/compute.md`).

# %%
conventions = {"attention counted": {"count_attention": True},
               "no attention products": {"count_attention": False},
               "paper convention": dict(reference.PAPER_CONVENTION)}
paper_tables = pd.concat([book.compute_table_cached(name, cfg.compute_widths, profile=cfg,
                                                        **kwargs).assign(convention=label)
                          for name in cfg.compute_models
                          for label, kwargs in conventions.items()], ignore_index=True)
floor = comparison.at_smallest_width(paper_tables, by=["model", "convention"]).pivot_table(
    index="model", columns="convention", values="rel_compute")
full = paper_tables[(paper_tables["width"] == 1.0)
                    & (paper_tables["convention"] == "attention counted")].set_index("model")
floor["GFLOPs at s=1 (attention counted)"] = full["flops"] / 1e9
floor["params at s=1 (M)"] = full["params"] / 1e6
floor.insert(0, "smallest width", paper_tables["width"].min())
plotting.show_table(floor, "02_paper_models_compute_floor", precision=4)

# %% [markdown]
# ## Which layers carry the compute: attention only, FFN only, both
#
# Slimming only one layer type leaves a large floor (the paper's appendix: MHSA-only floors
# at ~65–69 % of compute, FFN-only at ~34–37 % for its large models). Here for the SSL4EO
# ViT-S/16 at 224 px:

# %% tags=["hide-input"]
by_parts = {label: book.compute_table_cached("ssl4eo-vits16-moco", cfg.compute_widths,
                                                 parts=parts, profile=cfg)
            for label, parts in (("attention only", ("attn",)), ("FFN only", ("ffn",)),
                                 ("both", ("attn", "ffn")))}
ax = plotting.compute_curves({("ssl4eo-vits16-moco", k): v for k, v in by_parts.items()})
ax.set_title("ssl4eo-vits16-moco, 224 px, attention products counted")
plt.show()
plotting.show_table(pd.DataFrame({k: v.set_index("width")["rel_compute"]
                                  for k, v in by_parts.items()}),
                    "02_compute_per_slimmed_layer_type", precision=4)

# %% [markdown]
# The claim about these floors, computed under the paper's FLOP convention (no attention
# products, LayerNorms counted) for this profile's compute models, down to the paper's smallest
# width (the same statistic as the introduction's claims table):

# %%
from slimlib.book import claims

plotting.show_table(
    claims.evaluate(claims.Evidence(parts=claims.parts_tables(cfg), pretrained=cfg.pretrained),
                    claims.select("parts-floors")),
    "02_claim_parts_floors", compact_columns=["claim", "paper", "this build", "verdict", "why"])

# %% [markdown]
# ## Our relative compute vs the paper's
#
# The paper published relative compute per model and width (`slimlib.book.reference.paper_compute`,
# rounded to 4 decimals). `slimlib.book.reference.compute_side_by_side` aligns ours with it by
# width value (widths with identical FLOPs merged as the paper merges them) under each
# convention; FLOP counts are deterministic, so the differences have no interval.

# %%
side = reference.compute_side_by_side(paper_tables)
plotting.show_table(side, "02_relative_compute_ours_vs_paper", precision=4, missing={
    c: "the paper published no value at this width" for c in side.columns})

# %% tags=["hide-input"]
if len(side):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    plotting.ours_vs_paper(paper_tables, reference.paper_compute(cfg.compute_models), x="width",
                           y="rel_compute", hue="model", style="convention", paper_x="width",
                           ax=axes[0], ylabel="relative compute",
                           title="relative compute per width")
    plotting.difference_plot(side, hue="model", style="convention", ax=axes[1],
                             ylabel="ours − paper (relative compute)",
                             title="difference per width, one line per model and convention")
    plt.tight_layout()
    plt.show()
    plotting.show_table(side.groupby(["model", "convention"])["difference"].agg(
        lambda d: d.abs().max()).rename("largest |ours − paper|").unstack("convention"),
        "02_largest_difference", precision=4)
else:
    print("none of this build's compute models has published relative compute")
