"""What this build finds: one paragraph per central claim, written from computed statistics.

:func:`paragraphs` reads :func:`slimlib.book.claims.evaluate`'s table (and the embedding-floor
table of :func:`slimlib.book.claims.embedding_floor`) and returns markdown paragraphs: what this
build shows (the statistic, its interval and what the interval is), how strong that evidence
is (a verdict, or no verdict and why), what it cannot say, and what would settle it. Every
number in the text is formatted from those tables; the fixed sentences carry none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from slimlib.book.claims import rules as er

__all__ = ["CENTRAL", "SETTLE", "paragraphs", "claim_paragraph", "floor_paragraph"]

#: The paper's central claims, in the order the findings page reads them.
CENTRAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RS foundation models keep most of their accuracy at the smallest budget", ("rs-85",)),
    ("CV foundation models do not (the RS–CV gap)", ("cv-10-33", "cv-74-vs-82-95",
                                                      "v1-sevenfold")),
    ("Learned slimmable training helps MoCo, not MAE", ("slimmable-moco", "slimmable-mae")),
    ("Which dimensions are kept barely matters", ("order",)),
    ("Where attention-only and FFN-only slimming floor", ("parts-attention", "parts-ffn")),
    ("Three redundancy regimes", ("regimes",)),
)

#: What would settle each claim (no numbers: those come from the tables).
SETTLE: Mapping[str, str] = {
    "rs-85": "the `paper` profile on a GPU: the paper's RS foundation models on its GEO-Bench "
             "classification data at their smallest budgets",
    "cv-10-33": "the `paper` profile on a GPU: ImageNet-pretrained MAE and DINOv2 on an "
                "ImageNet subset at the paper's smallest budget",
    "cv-74-vs-82-95": "the `paper` profile: ImageNet MAE and the RS foundation models on the "
                      "same RS test images",
    "v1-sevenfold": "foundation models whose compute can go down to the claim's budget "
                    "(the `paper` profile's ViT-B/L models)",
    "slimmable-moco": "more test images or datasets for the same pair (the interval is over "
                      "datasets), or the `paper` profile's pairs on a GPU",
    "slimmable-mae": "more test images or datasets for the same pair (the interval is over "
                     "datasets), or the `paper` profile's pairs on a GPU",
    "order": "more test images for the ablation model (the interval comes from them), or the "
             "`paper` profile's models",
    "parts-attention": "the `paper` profile, which counts the FLOPs of the paper's layer-type "
                       "models (DOFA-L, TerraMind-L, Prithvi-600M; no weights needed, minutes "
                       "on a CPU); a FLOP count is exact",
    "parts-ffn": "the `paper` profile, which counts the FLOPs of the paper's layer-type models "
                 "(DOFA-L, TerraMind-L, Prithvi-600M; no weights needed, minutes on a CPU); a "
                 "FLOP count is exact",
    "regimes": "the `paper` profile's large RS foundation models with their redundancy metrics",
}


def _num(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.3f}"


def claim_paragraph(row: Mapping) -> str:
    """One claim's finding from its row of :func:`slimlib.book.claims.evaluate`."""
    key, verdict = row["key"], row["verdict"]
    shown = ""
    if math.isfinite(row["this build"]):
        shown = (f"This build measures **{_num(row['this build'])}**"
                 + (f" (95 % interval {row['interval']}; {row['interval kind']})"
                    if row["interval"] not in ("—", "exact") else
                    " (exact)" if row["interval"] == "exact" else " (no interval)")
                 + f" against the paper's criterion *{row['criterion']}*. ")
    if verdict in er.COUNTED:
        strength = (f"That is a verdict: the claim **{verdict}** in this build "
                    f"({row['why']}). ")
        cannot = ""
    else:
        strength = f"**No verdict** (not testable here): {row['why']}. "
        cannot = (f"What the partial evidence shows is an indication only and is not counted: "
                  f"{row['indication'].removeprefix('indication only: ')}. "
                  if row.get("indication") else "")
    settle = f"What would settle it: {SETTLE.get(key, 'the `paper` profile on a GPU')}."
    return f"*{row['claim']}* (paper: {row['paper']}). {shown}{strength}{cannot}{settle}"


def floor_paragraph(table: pd.DataFrame, *, retention_random: pd.Series | None = None,
                    pretrained: bool = True) -> str:
    """The embedding-floor result from :func:`slimlib.book.claims.embedding_floor`'s table
    (``pretrained=False``: the page says it is a pipeline check on random weights)."""
    if not pretrained:
        return ("This profile uses random weights, so its embedding-floor comparison checks the "
                "pipeline and says nothing about pretrained models. "
                + floor_paragraph(table, retention_random=retention_random)
                .replace("The interval", "Indication only: the interval", 1))
    if table.empty:
        return ("This build has no embedding-only floor for its RS models, so it cannot say "
                "how much of the slimmed accuracy the unslimmed embedding alone carries.")
    above, kept = table.attrs["above floor"], table.attrs["gain kept"]
    models = ", ".join(sorted(table["model"].unique()))
    compute = (f"{table['rel_compute'].min():.1%}–{table['rel_compute'].max():.1%}"
               if table["rel_compute"].notna().any() else "its smallest width's")
    per_run = "; ".join(
        f"{r.model} on {r.dataset}: {_num(r.value)} vs floor {_num(r.floor)}, "
        f"{r.above_floor:+.3f} [{r.above_floor_lo:+.3f}, {r.above_floor_hi:+.3f}]"
        + (f" ({r.note})" if r.note else "") for r in table.itertuples())
    if above is None:
        return (f"Every embedding-only floor of {models} is degenerate ({per_run}), so this "
                "build cannot say how much of the slimmed accuracy the embedding alone "
                "carries.")
    undecided = above.lo <= 0 <= above.hi
    text = (f"At {compute} of compute, {models} scores {above.value:+.3f} "
            f"(95 % interval [{above.lo:+.3f}, {above.hi:+.3f}], {above.label}) above its "
            f"embedding-only floor, what the unslimmed embedding gives with no transformer "
            f"block run ({per_run}). ")
    if kept is not None:
        text += (f"Of what the blocks add over that floor at full width it keeps "
                 f"{kept.value:.2f} [{kept.lo:.2f}, {kept.hi:.2f}] ({kept.n_runs} run(s) "
                 "whose full model beats a non-degenerate floor). ")
    else:
        text += "No run has a floor its full model beats, so no share of gain is computed. "
    if "random" in table and table["random"].notna().any():
        text += (f"The same architecture with random weights scores "
                 f"{table['random'].min():.3f}–{table['random'].max():.3f} at that width")
        if retention_random is not None and len(retention_random.dropna()):
            text += (f" and \"retains\" {retention_random.min():.0%}–"
                     f"{retention_random.max():.0%} of its own full-width accuracy")
        text += ". "
    if undecided:
        text += ("The interval includes 0: at this budget this build **cannot tell the slimmed "
                 "model from its embedding alone**, so its retention here may be carried by "
                 "the unslimmed patch embedding on easy spectral benchmarks rather than by "
                 "what the slimmed blocks keep. ")
    else:
        side = "above" if above.lo > 0 else "below"
        text += (f"The interval excludes 0: the slimmed model is {side} its embedding alone. ")
    text += (f"This bears on the paper's headline only as a question, not an answer: it rests "
             f"on {models} on this build's data; the paper's foundation models are untested "
             "offline, and the `paper` profile on a GPU (with its floors) would show whether "
             "their retention is above their embedding-only floors.")
    return text


def paragraphs(verdicts: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """``(heading, [paragraph per claim])`` for each of :data:`CENTRAL` present in the table."""
    rows = verdicts.set_index("key", drop=False)
    out = []
    for heading, keys in CENTRAL:
        present = [k for k in keys if k in rows.index]
        if present:
            out.append((heading, [claim_paragraph(rows.loc[k]) for k in present]))
    return out
