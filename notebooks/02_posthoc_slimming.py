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
# below is drawn by `slimlib.plotting.architecture_diagram` for the paper's SSL4EO ViT-S/16
# (the paper's Fig. 2 shows the same block).

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
pd.DataFrame(rows).style.hide(axis="index").format(precision=4)

# %% [markdown]
# ## FLOPs and parameters per width of the models in this build
#
# FLOPs are counted with `torch.utils.flop_counter` at each model's native input, batch 1,
# attention products included (`slimlib.flops`).

# %% tags=["hide-input"]
tiny = pd.concat([chapters.compute_table_cached(m, cfg.widths, profile=cfg)
                  for m in dict.fromkeys(cfg.models + cfg.cv_models)])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for name, part in tiny.groupby("model"):
    axes[0].plot(part["width"], part["rel_compute"], marker="o", ms=3, label=name)
    axes[1].plot(part["width"], part["params"] / 1e6, marker="o", ms=3, label=name)
for ax, label in zip(axes, ("relative compute", "parameters (M)"), strict=True):
    ax.set_xscale("log")
    ax.set_xlabel("width factor s")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
tiny.groupby("model").apply(lambda t: pd.Series({
    "GFLOPs at s=1": t.loc[t.width.idxmax(), "flops"] / 1e9,
    "compute floor (smallest s)": t.loc[t.width.idxmin(), "rel_compute"],
    "params at s=1 (M)": t.loc[t.width.idxmax(), "params"] / 1e6}), include_groups=False)

# %% [markdown]
# ## The compute floor of the paper's models
#
# The paper's foundation models are built here with random weights (`pretrained=False`):
# FLOPs do not depend on the weights. The residual stream, the patch embedding and the
# token-mixing products keep a floor that no width removes. `count_attention=False` leaves
# out the $QK^\top$ and $AV$ products (the convention that matches the paper's published
# relative compute closely, see `docs/compute.md`).

# %%
paper_tables = []
for name in cfg.compute_models:
    for count in (True, False):
        paper_tables.append(chapters.compute_table_cached(name, cfg.compute_widths,
                                                          count_attention=count, profile=cfg))
paper_tables = pd.concat(paper_tables, ignore_index=True)
fvcore = pd.concat([chapters.compute_table_cached(name, cfg.compute_widths,
                                                  count_attention=False, count_norms=True,
                                                  profile=cfg)
                    for name in cfg.compute_models], ignore_index=True)
floor = (paper_tables[paper_tables.width == paper_tables.width.min()]
         .pivot_table(index="model", columns="count_attention", values="rel_compute")
         .rename(columns={True: "floor, attention counted", False: "floor, attention not counted"}))
full = paper_tables[(paper_tables.width == 1.0) & paper_tables.count_attention]
floor["GFLOPs at s=1"] = full.set_index("model")["flops"] / 1e9
floor["params at s=1 (M)"] = full.set_index("model")["params"] / 1e6
floor.insert(0, "smallest width", paper_tables.width.min())
floor

# %% [markdown]
# ## Which layers carry the compute: attention only, FFN only, both
#
# Slimming only one layer type leaves a large floor (the paper's appendix: MHSA-only floors
# at ~65–69 % of compute, FFN-only at ~34–37 % for its large models). Here for the SSL4EO
# ViT-S/16 at 224 px:

# %% tags=["hide-input"]
by_parts = {label: chapters.compute_table_cached("ssl4eo-vits16-moco", cfg.compute_widths,
                                                 parts=parts, profile=cfg)
            for label, parts in (("attention only", ("attn",)), ("FFN only", ("ffn",)),
                                 ("both", ("attn", "ffn")))}
ax = plotting.compute_curves(by_parts)
ax.set_title("ssl4eo-vits16-moco, 224 px, attention products counted")
plt.show()
pd.DataFrame({k: v.set_index("width")["rel_compute"] for k, v in by_parts.items()})

# %% [markdown]
# The claim about these floors, computed under the paper's FLOP convention (no attention
# products, LayerNorms counted) for this profile's compute models, down to the paper's smallest
# width (the same statistic as the introduction's claims table):

# %%
from slimlib import claims

claims.evaluate(claims.Evidence(parts=claims.parts_tables(cfg), pretrained=cfg.pretrained),
                claims.select("parts-floors"))[["claim", "paper", "this build", "verdict",
                                                "why"]]

# %% [markdown]
# ## Our relative compute vs the paper's
#
# The paper published relative compute per model and width (`slimlib.reference.paper_compute`).
# Side by side with ours at the same widths, with both FLOP conventions:

# %%
pc = reference.paper_compute()
pc = pc[pc["model"].isin(cfg.compute_models) & ~pc["s"].astype(str).str.contains(r"\|")].copy()
pc["width"] = pc["s"].astype(float)
ours = paper_tables.pivot_table(index=["model", "width"], columns="count_attention",
                                values="rel_compute").rename(
    columns={True: "ours (attention counted)", False: "ours (no attention products)"})
side = pc.merge(ours.reset_index(), on=["model", "width"]).rename(
    columns={"rel_compute": "paper (Hackel et al. 2026)"})
side = side.merge(fvcore.rename(columns={"rel_compute": "ours (paper convention)"})[
    ["model", "width", "ours (paper convention)"]], on=["model", "width"], how="left")
side["diff, paper convention"] = side["ours (paper convention)"] - side["paper (Hackel et al. 2026)"]
side["diff, no attention"] = side["ours (no attention products)"] - side["paper (Hackel et al. 2026)"]
side["diff, attention"] = side["ours (attention counted)"] - side["paper (Hackel et al. 2026)"]
side = side.drop(columns=["series", "s"])
side

# %% tags=["hide-input"]
if len(side):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, part in side.groupby("model"):
        (line,) = ax.plot(part["width"], part["ours (no attention products)"], marker="o",
                          label=f"{name} — ours (no attention products)")
        ax.plot(part["width"], part["ours (attention counted)"], marker="^", ls=":",
                color=line.get_color(), label=f"{name} — ours (attention counted)")
        ax.plot(part["width"], part["paper (Hackel et al. 2026)"], ls="--", marker="s",
                color=line.get_color(), alpha=0.6, label=f"{name} — {plotting.PAPER_LABEL}")
    ax.set_xscale("log")
    ax.set_xlabel("width factor s")
    ax.set_ylabel("relative compute")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    plt.show()
    print(f"largest |difference| under the paper's convention (no attention products, norms "
          f"counted): {side['diff, paper convention'].abs().max():.4f}; without attention "
          f"products: {side['diff, no attention'].abs().max():.4f}; with them: "
          f"{side['diff, attention'].abs().max():.4f}")
else:
    print("none of this build's compute models has published relative compute")
