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
from pathlib import Path

from slimlib.sweeping import read_table

main = chapters.sweep_for(cfg, cfg.models)
path = Path(main.attrs.get("path", profiles.results_path("sweep.csv", cfg)))
everything = read_table(path)
print(f"result table: {path.name} under results/{cfg.name}/ — {len(everything)} rows")
everything.groupby(["model", "dataset", "protocol", "parts", "order"]).agg(
    rows=("value", "size"), widths=("width", "nunique"), seeds=("seed", "nunique"))

# %% [markdown]
# ## A1. Probe scores per width (seed mean)

# %%
probe = everything[everything["protocol"] != "features"]
ret = slimlib.retention(probe)
ret.pivot_table(index="width", columns=["model", "dataset", "protocol", "parts", "order"],
                values="mean").round(4)

# %% [markdown]
# ## A2. Retention per width

# %%
ret.pivot_table(index="width", columns=["model", "dataset", "protocol", "parts", "order"],
                values="retention").round(4)

# %% [markdown]
# ## A3. Redundancy metrics per width

# %%
everything[everything["protocol"] == "features"].pivot_table(
    index="width", columns=["model", "dataset", "metric"], values="value").round(4)

# %% [markdown]
# ## A4. Compute tables (FLOPs, parameters) of every model counted in this build

# %%
# the same (cached) tables as the chapter on post-hoc slimming
tables = [chapters.compute_table_cached(m, cfg.widths, profile=cfg)
          for m in dict.fromkeys(cfg.models + cfg.cv_models)]
tables += [chapters.compute_table_cached(m, cfg.compute_widths, count_attention=c, profile=cfg)
           for m in cfg.compute_models for c in (True, False)]
tables += [chapters.compute_table_cached("ssl4eo-vits16-moco", cfg.compute_widths, parts=p,
                                         profile=cfg) for p in (("attn",), ("ffn",))]
compute = pd.concat(tables, ignore_index=True)
compute["GFLOPs"] = compute["flops"] / 1e9
compute.pivot_table(index="width", columns=["model", "parts", "count_attention"],
                    values="rel_compute").round(4)

# %% [markdown]
# ## A5. The paper's published numbers
#
# Source: the project page of the paper (repository `hackelle/slimmable-rsfms`,
# `static/js/data.js`), bundled as `slimlib/reference_data/paper_results.csv`.

# %%
print("Citation:", reference.CITATION)
print("Licence:", reference.LICENCE)
pub = reference.load()
pub.groupby(["section", "dataset"]).agg(series=("series", "nunique"), values=("y", "size"))

# %% [markdown]
# ### Post-hoc k-NN retention at each model's smallest width (paper)

# %%
ph = reference.posthoc()
small = ph.loc[ph.groupby(["series", "dataset", "protocol"])["x"].idxmin()]
small.pivot_table(index="series", columns="dataset", values="retention").round(3)

# %% [markdown]
# ## A6. Side by side: Fig. 1a bins (this build − paper)

# %% tags=["hide-input"]
rows = plotting.per_run_retention(probe[(probe["protocol"] == "knn")
                                        & (probe["parts"] == "attn+ffn")
                                        & (probe["order"] == "first")
                                        & probe["model"].isin(cfg.models)
                                        & probe["dataset"].isin(main["dataset"].unique())])
ours = plotting.bin_stats(rows).set_index("bin")
paper_mean = plotting.paper_fig_parts(pub[pub["section"] == "fig1a"])[0]
paper_rs = paper_mean[paper_mean["series"].str.startswith("RS")].set_index("x")["y"]
cmp = pd.DataFrame({"this build (RS tiny models)": ours["mean"], "this build SD": ours["sd"],
                    "paper (RS FMs, 4 datasets)": paper_rs})
cmp["difference"] = cmp["this build (RS tiny models)"] - cmp["paper (RS FMs, 4 datasets)"]
fig, ax = plt.subplots(figsize=(6.4, 3.4))
ax.bar(cmp.index.astype(float) - 0.02, cmp["this build (RS tiny models)"], width=0.04,
       label="this build (RS tiny models)")
ax.bar(cmp.index.astype(float) + 0.02, cmp["paper (RS FMs, 4 datasets)"], width=0.04,
       label=f"RS FMs — {plotting.PAPER_LABEL}")
ax.set_xlabel("relative compute bin")
ax.set_ylabel("mean retention")
ax.legend(fontsize=7)
ax.grid(alpha=0.3, axis="y")
plt.show()
cmp.round(4)

# %% [markdown]
# ## A7. Side by side: relative compute (ours − paper)

# %%
pc = reference.paper_compute()
pc = pc[~pc["s"].astype(str).str.contains(r"\|")].copy()
pc["width"] = pc["s"].astype(float)
mine = compute[compute["parts"] == "attn+ffn"].pivot_table(
    index=["model", "width"], columns="count_attention", values="rel_compute").reset_index()
mine.columns = [str(c) for c in mine.columns]
side = pc.merge(mine, on=["model", "width"])
if len(side):
    side = side.rename(columns={"rel_compute": "paper", "True": "ours (attention counted)",
                                "False": "ours (no attention products)"})
    for col in ("ours (attention counted)", "ours (no attention products)"):
        if col in side:
            side[f"{col} − paper"] = side[col] - side["paper"]
    display(side.drop(columns=["series", "s"]).round(4))
else:
    print("no model of this build has published relative compute")
