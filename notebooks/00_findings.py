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
# # What this build finds
#
# This page reads the paper's central claims one by one from the statistics this build
# computes (the same `slimlib.book.claims.evaluate` table as the *Introduction*, from the same
# cached runs). For each it says what this build shows, with its 95 % interval and what that
# interval comes from; how strong the evidence is (a verdict, or no verdict and why); what it
# cannot say; and what would settle it. The rules of evidence are in `docs/claims.md`: a
# verdict needs real pretrained models of the kind the claim is about, at its budget, on its
# kind of data; everything else is an **indication**, labelled so and never counted. Every
# number below is computed on this page.

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
from IPython.display import Markdown, display

from slimlib import book
from slimlib.book import claims, findings, profiles
from slimlib.sweeping import controls

book.setup_page()
cfg = profiles.resolve(profile, models=models, datasets=datasets, widths=widths, seeds=seeds,
                       protocols=protocols, device=device, batch_size=batch_size,
                       data_root=data_root)

# %% tags=["hide-input"]
display(Markdown(profiles.data_note(cfg)))
evidence = claims.gather(cfg)
verdicts = claims.evaluate(evidence)
board = claims.scoreboard(verdicts)
display(Markdown(
    f"Of {len(verdicts)} claims, this build reaches a verdict on "
    f"**{board[claims.HOLDS] + board[claims.FAILS]}** ({board[claims.HOLDS]} {claims.HOLDS}, "
    f"{board[claims.FAILS]} {claims.FAILS}); **{board[claims.NOT_TESTABLE]}** are "
    f"{claims.NOT_TESTABLE}."))

# %% [markdown]
# ## The embedding floor at the smallest width
#
# The control the paper lacks: the slimmed RS model at its smallest control width against the
# same network with no transformer block run (its embedding-only floor) and against the same
# architecture with random weights, on the same test images (differences are paired).

# %% tags=["hide-input"]
floor = claims.embedding_floor(evidence)
random_retention = None
if evidence.controls is not None and not evidence.controls.empty:
    small = controls.at_smallest(evidence.controls[evidence.controls["protocol"] == "knn"])
    random_retention = small["random_retention"]
display(Markdown(findings.floor_paragraph(floor, retention_random=random_retention,
                                          pretrained=cfg.pretrained)))

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(floor), 1)))
if floor.empty:
    ax.text(0.5, 0.5, "no embedding-only floor in this build", ha="center", va="center")
    ax.set_axis_off()
else:
    labels = [f"{r.model} @ {r.dataset}" for r in floor.itertuples()]
    y = range(len(floor))
    for col, marker, name in (("floor", "s", "embedding-only floor"),
                              ("value", "o", "slimmed (smallest width)"),
                              ("random", "x", "random init, same width"),
                              ("full", "D", "full width")):
        if col in floor:
            ax.scatter(floor[col], y, marker=marker, label=name, zorder=3)
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("k-NN accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    ax.set_title("Slimmed model vs its controls, per run")
plt.show()

# %% [markdown]
# ## The paper's central claims

# %% tags=["hide-input"]
for heading, texts in findings.paragraphs(verdicts):
    display(Markdown(f"### {heading}\n\n" + "\n\n".join(texts)))
