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
# # Appendix: every table, and the paper's published numbers
#
# All result tables of this build (read from the resumable result files, so nothing is
# recomputed here) and the paper's published numbers, side by side where the quantities are
# comparable, with the differences computed.
#
# **What it cannot show**: the paper's accuracy and retention numbers are for ViT-B/L models
# on GEO-Bench, which this profile does not run; A5 lists them as published, and differences
# are computed only where this build measured the same quantity (A6: the Fig. 1a bins of our
# RS models, A7: relative compute of the same architectures).

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
from slimlib.book import comparison, pages, plotting, profiles, reference
from slimlib.sweeping import controls

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
from pathlib import Path

from slimlib.sweeping import read_table

main = book.sweep_for(cfg, cfg.models)
path = Path(main.attrs.get("path", profiles.results_path("sweep.csv", cfg)))
everything = read_table(path)
print(f"result table: {path.name} under results/{cfg.name}/ — {len(everything)} rows")
plotting.show_table(everything.groupby(["model", "dataset", "protocol", "parts", "order"]).agg(
    rows=("value", "size"), widths=("width", "nunique"), seeds=("seed", "nunique")),
    "09_runs", max_rows=60)
RUN = ["model", "dataset", "protocol", "parts", "order"]  # one curve of the result table

# %% [markdown]
# ## A1. Probe scores and retention per width (seed mean)
#
# One row per curve and width (runs differ in their widths: ablations and controls run at
# fewer widths than the main sweep, so a wide table would be mostly empty). The page shows
# the first rows; the CSV holds every row.

# %%
probe = everything[everything["protocol"] != "features"]
ret = slimlib.retention(probe)
plotting.show_table(ret.sort_values([*RUN, "width"]), "09_probe_scores", max_rows=30,
                    precision=4, compact_columns=[
                        *RUN, "width", "rel_compute", "mean", "std", "n_seeds", "retention"],
                    missing={"std": "one probe seed: no spread"})

# %% [markdown]
# ## A2. Retention per width of this build's models (main sweep)
#
# Both layer types slimmed, first dims kept, the models of this profile; every other curve
# is in the CSV of A1.

# %%
main_ret = ret[ret["model"].isin(cfg.models) & (ret["parts"] == "attn+ffn")
               & (ret["order"] == "first")]
plotting.show_table(main_ret.pivot_table(index="width", columns=["model", "dataset", "protocol"],
                                         values="retention"),
                    "09_retention_main_sweep", precision=4, max_rows=60,
                    missing={c: "this curve has no row at this width"
                             for c in map(" / ".join, main_ret.groupby(
                                 ["model", "dataset", "protocol"]).groups)})

# %% [markdown]
# ## A3. Redundancy metrics per width

# %%
plotting.show_table(everything[everything["protocol"] == "features"].sort_values(
    ["model", "dataset", "metric", "width"]), "09_redundancy_metrics", max_rows=30,
    precision=4, compact_columns=["model", "dataset", "metric", "width", "rel_compute",
                                  "value"])

# %% [markdown]
# ## A4. Compute tables (FLOPs, parameters) of every model counted in this build

# %%
# the same (cached) tables as the chapter on post-hoc slimming
tables = [book.compute_table_cached(m, cfg.widths, profile=cfg)
          for m in dict.fromkeys(cfg.models + cfg.cv_models)]
conventions = ({"count_attention": True}, {"count_attention": False},
               dict(reference.PAPER_CONVENTION))
tables += [book.compute_table_cached(m, cfg.compute_widths, profile=cfg, **c)
           for m in cfg.compute_models for c in conventions]
tables += [book.compute_table_cached("ssl4eo-vits16-moco", cfg.compute_widths, parts=p,
                                         profile=cfg) for p in (("attn",), ("ffn",))]
compute = pd.concat(tables, ignore_index=True)
compute["GFLOPs"] = compute["flops"] / 1e9
plotting.show_table(compute, "09_compute", max_rows=30, precision=4, compact_columns=[
    c for c in ("model", "parts", "count_attention", "count_norms", "width", "rel_compute",
                "GFLOPs", "params") if c in compute])

# %% [markdown]
# ## A5. The paper's published numbers
#
# Source: the project page of the paper (repository `hackelle/slimmable-rsfms`,
# `static/js/data.js`), bundled as `slimlib/book/reference_data/paper_results.csv`.

# %%
print("Citation:", reference.CITATION)
print("Licence:", reference.LICENCE)
pub = reference.load()
plotting.show_table(pub.groupby(["section", "dataset"]).agg(
    series=("series", "nunique"), values=("y", "size")), "09_published_sections", max_rows=60)

# %% [markdown]
# ### Post-hoc retention at each model's smallest width (paper)

# %%
plotting.show_table(reference.smallest_budget_retention(datasets=None, protocol=None),
                    "09_paper_smallest_width_retention", max_rows=60,
                    missing="the paper published no value for this model and dataset")

# %% [markdown]
# ## A6. Side by side: Fig. 1a bins (this build − paper)
#
# This build's pooled k-NN retention of its RS models per 10 % compute bin (bins on relative
# compute in the paper's FLOP convention) minus the paper's RS-FM bin means
# (`slimlib.book.comparison.paper_difference`, aligned by bin; ± 2 SE of our bin mean). The
# **control** is the same difference for the random-init networks of the same architectures
# (the controls chapters 3 and 4 ran): where it is as close to zero as ours, agreeing with
# the paper's retention says nothing about pretraining.

# %% tags=["hide-input"]
paper_bins = reference.fig1_bins("fig1a")
base = probe[(probe["protocol"] == "knn") & (probe["parts"] == "attn+ffn")
             & (probe["order"] == "first") & probe["dataset"].isin(main["dataset"].unique())]
groups = {"this build's RS models": base[base["model"].isin(cfg.models)],
          "random-init controls": base[controls.is_control(base["model"], of=cfg.models)]}
bins_diff = pd.concat([comparison.paper_difference(
    plotting.bin_stats(comparison.with_paper_axis(plotting.per_run_retention(part),
                                                  profile=cfg), x="rel_compute_paper"),
    paper_bins[paper_bins["series"].str.startswith("RS")], on="bin", value="mean").assign(
    runs=label) for label, part in groups.items() if len(part)], ignore_index=True)
plotting.difference_plot(bins_diff, on="bin", hue="runs", logx=False,
                         ylabel="ours − paper (mean retention per bin)")
plt.show()
plotting.show_table(bins_diff, "09_fig1a_bins_difference", precision=4, missing={
    c: "no interval: a single run in the bin" for c in ("diff_lo", "diff_hi")})

# %% [markdown]
# ## A7. Side by side: relative compute (ours − paper)
#
# Aligned by width value under each FLOP convention (`slimlib.book.reference.compute_side_by_side`;
# FLOP counts are deterministic, so no interval).

# %%
side = reference.compute_side_by_side(compute)
if len(side):
    plotting.show_table(side, "09_relative_compute_difference", precision=4, max_rows=60)
else:
    print("no model of this build has published relative compute")
