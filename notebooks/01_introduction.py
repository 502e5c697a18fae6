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
# # Introduction: how much of a model do we need?
#
# This book re-runs the experiments of *How Much of a Model Do We Need? Redundancy and
# Slimmability in Remote Sensing Foundation Models* (Hackel, Burgert, Demir; NeurIPS 2026,
# [arXiv:2601.22841](https://arxiv.org/abs/2601.22841)) with the `slimlib` library, one chapter
# per paper section, at the scale a laptop CPU allows. Every figure and table is computed when
# the book is built, from the settings shown on each page; where the paper published the same
# quantity its values are drawn beside ours, labelled **paper (Hackel et al. 2026)**. The
# claims table below says, claim by claim, what this build measured, the paper's value, and a
# verdict computed by code; what this build cannot test is marked so, with the reason.
#
# **Which models are real.** In the default profile the remote-sensing foundation model is
# **Galileo-nano** (Tseng et al. 2025) with the weights published by its authors, on real
# EuroSAT 13-band, EuroSAT RGB and UC Merced images. The CV models and the regular/slimmable
# pairs are **slimlib's own miniatures** (tiny ViTs pretrained here in minutes); the paper's
# ViT-B/L foundation models need the `paper` profile (GPU and downloads).
#
# **What this page shows**: the paper's Fig. 1a as published, the settings and data this build
# ran on, the tiny encoders it pretrained, and two computed tables: every claim of the paper
# (all versions) and every robustness comparison of the camera-ready, each with this build's
# statistic, its interval and a verdict. **What it cannot show**: whether the claims hold for
# the paper's own ViT-B/L foundation models and GEO-Bench data (this build has one real RS
# foundation model, Galileo-nano, beside miniatures: a verdict about RS FMs rests on that one
# model, and claims about model kinds, budgets or data this build lacks are *not testable
# here*, with the reason and an indication that is never counted); segmentation and change
# detection are not run.
#
# **Post-hoc slimming** keeps, in every transformer block of a pretrained ViT, the first
# $\max(1, \lfloor s\, d_h \rfloor)$ FFN hidden units and, in every attention head, the first
# $\max(1, \lfloor s\, d_k \rfloor)$ query/key/value dimensions (all heads kept, softmax scale
# $1/\sqrt{d_k'}$). Embeddings, norms and the residual width stay. There is no retraining.
# **Retention** is metric$(s)$ / metric$(1)$ of frozen-feature k-NN ($k=5$) and **relative
# compute** is FLOPs$(s)$ / FLOPs$(1)$.

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

from slimlib import book
from slimlib.book import plotting, profiles, reference

book.setup_page()
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

# %% [markdown]
# The paper's headline figure (Fig. 1a) as published: RS foundation models keep most of their
# k-NN accuracy down to a few percent of compute, CV models do not. The chapter *RS vs CV*
# draws this build's own curves over it.

# %% tags=["hide-input"]
ax = plotting.fig1a({}, reference.load().query("section == 'fig1a'"))
ax.set_title(f"Fig. 1a — {plotting.PAPER_LABEL}")
plt.show()

# %% [markdown]
# ## What this build used

# %%
env = profiles.environment(cfg)
pd.DataFrame({"setting": list(env), "value": list(env.values())}).style.hide(axis="index")

# %% [markdown]
# ## The embedded models, pretrained here
#
# The first chapter trains every tiny encoder this profile needs whose checkpoint is not in
# the cache yet, two at a time (one per CPU core; `slimlib.train.embedded.pretrain_missing`).
# Later chapters load them from the cache. `train_s` is the wall time each one took when it
# was trained (on the machine that filled the cache).

# %%
pretraining = book.pretrain_models(cfg)
if pretraining.empty:
    display(Markdown(f"Profile `{cfg.name}` uses **random weights**: nothing was pretrained."))
else:
    print(f"pretrain_models: {pretraining.attrs['wall_s']:.0f} s in this build "
          f"({(~pretraining['cached']).sum()} of {len(pretraining)} trained now)")
    display(pretraining.style.hide(axis="index").format({"train_s": "{:.0f}"}))

# %% [markdown]
# ## The paper's claims, computed
#
# `slimlib.book.claims.gather` runs (or reads back) every sweep the claims need with exactly the
# calls the owning chapters make; those chapters then reuse the rows. Each claim is judged by
# one set of rules (`slimlib.book.claims.rules`, explained in `docs/claims.md`): a claim is about
# a kind of model (RS foundation models, ImageNet CV foundation models, a regular/slimmable
# pair), a compute budget and a kind of data, and gets **holds** or **does not hold** only when
# this build ran real pretrained models of that kind, at that budget, on that kind of data,
# and its interval decides the paper's criterion. Everything else is **not testable here**,
# with the reason, and its **indication** (what the stand-ins or an undecided interval show)
# is labelled as such and never counted. The criterion is applied to the number in the
# *this build* column. Each interval is a 95 % interval from a bootstrap over the test images
# and probe seeds, paired where both sides share the test images, clustered over model ×
# dataset runs where runs are pooled; the full table (CSV under it) says, per claim, what its
# interval comes from (*interval kind*), the paper's value and the owning chapter.

# %% tags=["full-width"]
from slimlib.book import claims

evidence = claims.gather(cfg)
verdicts = claims.evaluate(evidence)
plotting.show_table(verdicts, "01_claims", compact_columns=[
    "claim", "this build", "interval", "criterion", "verdict", "why", "indication"],
    missing={"this build": "no statistic (see why)", "interval": "no interval"})

# %%
board = claims.scoreboard(verdicts)
tested = board[claims.HOLDS] + board[claims.FAILS]
display(Markdown(
    f"**Scoreboard** (verdicts only): of {len(verdicts)} claims, this build can test "
    f"**{tested}** with the model kind, budget and data they are about: **{board[claims.HOLDS]}** "
    f"{claims.HOLDS}, **{board[claims.FAILS]}** {claims.FAILS}. The other "
    f"**{board[claims.NOT_TESTABLE]}** are {claims.NOT_TESTABLE}; their indications are listed "
    "in the table and are not counted. *What this build finds* reads each of them."))

# %% [markdown]
# ### The camera-ready's robustness claims, computed
#
# The camera-ready's robustness analyses (class imbalance, class-wise AP, implicit order with
# 20 draws, a geographic-shift proxy, fine-tuning of slimmed encoders, slimmability during
# pretraining) are compared with the paper's rebuttal numbers by
# `slimlib.book.robustness.chapter.verdict_table`: the same section functions, with this profile's
# settings, that the chapter *Robustness* calls, so each row below is a row of that chapter's
# verdict table (which draws the curves behind it and states the rule of each comparison);
# "reference" rows are the regular training runs the slimmable ones are read against. The
# features and fine-tuning runs are cached, so chapter 10 reads them back.

# %% tags=["full-width"]
from slimlib.book.robustness import chapter as robustness_chapter

robust = robustness_chapter.verdict_table(cfg, robustness_chapter.settings(cfg))
print(f"robustness verdicts: {sum(robust.attrs['seconds'].values()):.0f} s in this build")
plotting.show_table(robust, "01_robustness", compact_columns=[
    "analysis", "this build", "interval", "paper", "random init", "verdict", "why",
    "indication"], missing={"this build": "no statistic (see why)", "interval": "no interval",
                            "random init": "no random-init reading for this comparison"})

# %%
rcounts = robust["verdict"].value_counts()
display(Markdown("Robustness, in this build: " + ", ".join(
    f"**{n}** {v}" for v, n in rcounts.items()) + f" (of {len(robust)} comparisons). "
    "**Not run by this build**: segmentation and change detection (GEO-Bench / OSCD downloads; "
    "their loaders and probe are in `slimlib.dense`, tested on fixtures only)."))

# %% [markdown]
# Besides Galileo-nano, the **default** profile runs the six tiny encoders that `slimlib`
# pretrains itself on the embedded data (MoCo v3 and MAE, regular and slimmable, on EuroSAT
# RGB; MoCo and MAE on CIFAR-10), so the whole book builds on a laptop CPU. The **paper** profile names the
# paper's foundation models and GEO-Bench datasets; it needs a GPU and the downloads (offline,
# the loaders stop with a message saying which file to place where). The paper's own numbers
# are bundled in `slimlib.book.reference` (CC BY-SA 4.0):

# %%
print(reference.CITATION)
print("Licence of the published numbers:", reference.LICENCE)
published = reference.load()
published.groupby("section").size().rename("published values").to_frame()

# %% [markdown]
# ## How to rerun a chapter
#
# Each chapter is a Jupytext (py:percent) file in `notebooks/` whose first code cell is
# tagged `parameters`. Rerun one headless with other settings:
#
# ```bash
# python -m slimlib run notebooks/03_rs_slimmability.py -p models '["rs-mae-tiny"]' -p profile smoke
# # -> runs/03_rs_slimmability/<timestamp>-<hash>.ipynb, results under results/<profile>/
# ```
#
# or with plain papermill:
#
# ```bash
# jupytext --to ipynb notebooks/03_rs_slimmability.py -o runs/03.ipynb
# papermill runs/03.ipynb runs/03_mae.ipynb -k python3 -p profile smoke -y 'models: [rs-mae-tiny]'
# ```
#
# Rebuild the whole book with `jupyter-book build book --all` (cached results make a
# rebuild fast; see `docs/book.md`).
