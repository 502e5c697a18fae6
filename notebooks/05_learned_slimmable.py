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
# one to two minutes, whose full-width k-NN lies close to their own random init's (the margin
# is computed below, under the controls table; `docs/pretraining.md`). This chapter is the one place they belong: a comparison of regular
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
import pandas as pd
from IPython.display import Markdown, display

import slimlib
from slimlib import book
from slimlib.book import comparison, pages, plotting, reference

# %% tags=["remove-input"]
cfg = pages.start(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                  protocols=protocols, device=device, batch_size=batch_size, data_root=data_root)

# %%
pairs = cfg.slimmable_pairs
names = [m for pair in pairs for m in pair]
table = book.sweep_for(cfg, names)
ret = comparison.with_paper_axis(slimlib.retention(table[table["protocol"] == "knn"]),
                                 profile=cfg)
kind = {m: ("slimmable" if m == s else "regular") for r, s in pairs for m in (r, s)}
ret["training"] = ret["model"].map(kind)
plotting.show_table(ret.groupby(["model", "training"]).size().rename("widths").to_frame(),
                    "05_models")

# %% [markdown]
# Our curves (solid) over the paper's four ViT-B curves on m-eurosat (dashed), k-NN, against
# relative compute in the paper's FLOP convention. Architectures, pretraining data and
# evaluation data differ; the figure places the miniatures next to the published curves.
# **Controls**: the four miniatures share one architecture and one random-init network per
# init seed (checked by `slimlib.book.shared_controls_for`), so one band (min–max
# over init seeds, dash-dotted: their mean; in a lighter shade of the first model's colour)
# is that control at the control widths; each model's embedding-only floor (the mean of its
# embedding tokens, no block run) is a dotted line in its colour.

# %% tags=["hide-input"]
native = reference.posthoc("native")
native_eu = native[native["dataset"] == "m-eurosat"]
_, _, controls = book.shared_controls_for(cfg, names, sorted(ret["dataset"].unique()),
                                              protocols=("knn",))
controls = comparison.with_paper_axis(controls, profile=cfg)
run_of = {m: f"{m} ({kind[m]})" for m in names}
for dataset, part in ret.groupby("dataset"):
    part = part.assign(run=part["model"].map(run_of))
    ctrl = controls[controls["dataset"] == dataset]
    floors = ctrl.groupby("model")["floor"].first()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    plotting.control_band(ctrl[ctrl["model"] == names[0]], axes[0], x="rel_compute_paper",
                          floor=False, label=f"random init ({names[0]}'s architecture)")
    plotting.control_band(ctrl[ctrl["model"] == names[0]], axes[1], x="rel_compute_paper",
                          retention=True, floor=False, label="random init")
    plotting.ours_vs_paper(part, native_eu, y="mean", paper_y="y", hue="run", ax=axes[0],
                           ylabel="k-NN accuracy (macro)", title=f"this build: {dataset}",
                           floors={run_of[m]: v for m, v in floors.items()})
    plotting.ours_vs_paper(part, native_eu, hue="run", ax=axes[1], title="retention",
                           floors={run_of[m]: v / ctrl.loc[ctrl["model"] == m, "full"].iloc[0]
                                   for m, v in floors.items()}, paper_legend="one")
    axes[0].get_legend().remove()
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The same controls as numbers at each control width: accuracy above the random-init mean
# with its 95 % interval (column `interval` says how it was made) and the share of the
# pretrained gain over the floor that the slimmed model keeps,
# $(\mathrm{acc}(s) - \mathrm{floor}) / (\mathrm{acc}(1) - \mathrm{floor})$ — not defined, with
# the reason in `gain_kept_note`, where the floor is degenerate or not beaten.

# %%
plotting.show_table(controls, "05_controls", compact_columns=[
                        "model", "dataset", "width", "value", "random_mean", "above_random",
                        "above_random_lo", "above_random_hi", "floor", "gain_kept",
                        "gain_kept_note", "interval"],
                    missing={"gain_kept": "not defined: see gain_kept_note (a degenerate "
                                          "floor, or a full-width model that does not beat "
                                          "its floor)"})
at_full = controls[controls["width"] == 1.0]
if len(at_full):
    lo, hi = 100 * at_full["above_random"].min(), 100 * at_full["above_random"].max()
    display(Markdown(
        f"At full width the miniatures' k-NN accuracy is **{lo:+.1f} to {hi:+.1f} points** "
        f"away from the mean of their random-init networks ({len(at_full)} model × dataset "
        "runs; per run, with its paired interval, in the table above)."))
else:
    display(Markdown("The control widths of this profile do not include s = 1, so the "
                     "full-width margin over random init is not computed here."))

# %% [markdown]
# ## Gain of slimmable over regular training, per width
#
# Difference of k-NN accuracy (slimmable − regular) at each width, ours
# (`slimlib.book.comparison.paired_difference`, ± 2 SE over probe seeds where there are several)
# and the paper's (`slimlib.book.reference.native_gain`, m-eurosat). Both sides are paired **by
# width value**; the paper's points carry their published width.

# %% tags=["hide-input"]
method_of = {pair: ("MoCo" if "moco" in pair[0] else "MAE" if "mae" in pair[0] else pair[0])
             for pair in map(tuple, pairs)}
gain = pd.concat([comparison.paired_difference(ret, regular, slimmable).assign(
    pair=f"{slimmable} vs {regular}", method=method_of[(regular, slimmable)])
    for regular, slimmable in map(tuple, pairs)], ignore_index=True)
paper_gain = reference.native_gain("m-eurosat")
fig, ax = plt.subplots(figsize=(7, 4))
# one line per pair (colour: its slimmable model) and dataset (line style), never joined
plotting.ours_vs_paper(gain, paper_gain.assign(series=paper_gain["method"] + " ViT-B, m-eurosat"),
                       x="width", y="difference", hue="pair", style="dataset",
                       paper_x="width", paper_y="gain", ax=ax,
                       ylabel="accuracy gain of slimmable training")
ax.axhline(0, color="0.5", lw=0.8)
plt.show()

# %% [markdown]
# Ours − paper per width (each of our pairs against the paper's gain for the same
# pretraining method):

# %%
gain_diff = pd.concat([comparison.paper_difference(
    part, paper_gain[paper_gain["method"] == method], value="difference",
    paper_value="gain").assign(pair=pair, dataset=dataset)
    for (pair, method, dataset), part in gain.groupby(["pair", "method", "dataset"])],
    ignore_index=True)
first = ["pair", "dataset", "width", "paper", "ours", "difference", "interval"]
plotting.show_table(gain_diff, "05_gain_difference", compact_columns=[
    *[c for c in first if c in gain_diff], *[c for c in gain_diff if c not in first]], missing={
    c: "no interval: one probe seed in this profile" for c in ("diff_lo", "diff_hi")})

# %% [markdown]
# The claim this chapter owns, computed (mean retention gain of slimmable training over
# widths ≤ 0.25, ± 2 SE; the same statistic as the introduction's table):

# %%
from slimlib.book import claims

plotting.show_table(claims.evaluate(claims.Evidence(slimmable=table,
                                                    pairs=tuple(map(tuple, pairs)),
                                                    pretrained=cfg.pretrained),
                                    claims.select("slimmable-moco-not-mae")),
                    "05_claims", compact_columns=["claim", "paper", "this build", "interval", "criterion", "verdict", "why", "indication"])
