"""The paper's claims, each with the statistic this build measures and a computed verdict.

Every claim of the paper (all versions, see ``docs/claims.md``) is a :class:`Claim`: its words,
the paper's value, the chapter that owns it, and a *statistic function* that turns this build's
tables into ``(statistic, interval, verdict, reason)``. The chapter that owns a claim calls the
same statistic function on the same tables, so a verdict in the introduction can always be
traced to a cell.

Verdicts are one of :data:`VERDICTS`; "not testable" always says why (a compute floor above the
claim's budget, no models of the kind the claim is about, ...). Intervals are ± 2 standard
errors, from the binomial SE of each accuracy on its test split (:func:`slimlib.controls.
binomial_se`), propagated through means and differences as independent errors.

This module owns the claims table (:data:`CLAIMS`, :func:`select`, :func:`evaluate`). The
statistics live in :mod:`slimlib.claim_statistics`, the gathering of this build's tables in
:mod:`slimlib.claim_evidence`; both are re-exported here under their old names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from slimlib.claim_evidence import ablation_model, gather, is_real_rs, order_rows, parts_tables
from slimlib.claim_statistics import (
    FAILS,
    HOLDS,
    UNTESTABLE,
    VERDICTS,
    Evidence,
    Result,
    attention_ffn_floors,
    cv_10_33,
    cv_on_rs,
    order_deviation,
    order_insensitivity,
    parts_floor,
    redundancy_regime,
    rs_85,
    rs_above_controls,
    slimmable_gain,
    slimmable_training,
    smallest_width_retention,
    three_regimes,
    v1_sevenfold,
)

__all__ = ["VERDICTS", "Claim", "CLAIMS", "Evidence", "evaluate", "select", "is_real_rs",
           "gather", "smallest_width_retention",
           "slimmable_gain", "order_deviation", "parts_floor", "redundancy_regime",
           # also re-exported: the verdict constants, Result and the evidence tables
           "HOLDS", "FAILS", "UNTESTABLE", "Result", "ablation_model", "order_rows",
           "parts_tables"]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper."""

    key: str
    version: str
    text: str
    paper: str
    chapter: str
    criterion: str
    statistic: Callable[[Evidence], Result]
    needs_weights: bool = True


CLAIMS: tuple[Claim, ...] = (
    Claim("v1-sevenfold", "v1", "RS FMs keep > 71 % at 1 % FLOPs, ImageNet MAE < 10 %: "
          "a sevenfold gap", "> 71 % vs < 10 %", "RS vs CV",
          "RS / CV retention ≥ 7 at ≤ 1.5 % compute", v1_sevenfold),
    Claim("rs-85", "camera-ready", "RS FMs keep ≈ 85 % mean k-NN retention at the smallest "
          "budget (0.8–6.4 % of compute)", "84.7 % (8 RS FMs × 4 datasets)",
          "Slimmability of RS FMs", "mean retention, ± 2 SE overlaps 80–90 %", rs_85),
    Claim("rs-above-controls", "this book", "(control the paper lacks) at the smallest width "
          "the slimmed RS model scores above its embedding-only floor", "—",
          "Slimmability of RS FMs", "mean accuracy above the floor > 2 SE", rs_above_controls),
    Claim("cv-10-33", "camera-ready", "CV MAE / DINOv2 keep only 10–33 % at their smallest "
          "budget (2.9 %) on ImageNet subsets", "10–33 %", "RS vs CV",
          "mean retention, ± 2 SE overlaps 10–33 %", cv_10_33),
    Claim("cv-74-vs-82-95", "camera-ready", "CV MAE moved to RS data keeps 74 %, below the "
          "82–95 % of RS FMs on the same data", "74 % vs 82–95 %", "RS vs CV",
          "RS − CV retention at the smallest width > 2 SE", cv_on_rs),
    Claim("slimmable-moco-not-mae", "camera-ready", "Learned slimmable training helps "
          "contrastive (MoCo) but not MAE pretraining (v1: helps both)", "MoCo yes, MAE no",
          "Learned slimmable training", "MoCo gain > 2 SE and MAE gain ≤ 2 SE", slimmable_training),
    Claim("parts-floors", "camera-ready", "Attention-only slimming floors at ≈ 65–69 % "
          "compute, FFN-only at ≈ 34–37 %", "65–69 % / 34–37 %", "Post-hoc slimming",
          "floors within 60–75 % / 30–42 %", attention_ffn_floors, needs_weights=False),
    Claim("order", "camera-ready", "Which dimensions are kept (first/last/random) barely "
          "matters: ≤ 2.8 points from the random mean", "≤ 2.8 points", "Ablations",
          "max deviation ≤ 0.028 + 2 SE", order_insensitivity),
    Claim("regimes", "camera-ready", "Three redundancy regimes: monotonic, saturating, "
          "decoupled", "DOFA-L / TerraMind-L / Prithvi-600M", "Why it works",
          "all three regimes among this build's RS models", three_regimes),
)


def select(*keys: str) -> tuple[Claim, ...]:
    """The claims with these keys (what a chapter that owns them evaluates)."""
    by_key = {c.key: c for c in CLAIMS}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise ValueError(f"unknown claim key(s) {unknown}; known: {sorted(by_key)}")
    return tuple(by_key[k] for k in keys)


def evaluate(ev: Evidence, claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """The claims table: one row per claim with this build's statistic, interval and verdict.

    A statistic that raises (e.g. a table without the rows it needs) gives "not testable"
    with the error as its reason, never a silent pass.
    """
    rows = []
    for claim in claims:
        if claim.needs_weights and not ev.pretrained:
            rows.append({"claim": claim.text, "version": claim.version, "paper": claim.paper,
                         "this build": math.nan, "± (2 SE)": math.nan,
                         "criterion": claim.criterion, "verdict": UNTESTABLE,
                         "why": "this profile uses random weights (a pipeline check)",
                         "chapter": claim.chapter, "key": claim.key})
            continue
        try:
            value, interval, verdict, reason = claim.statistic(ev)
        except (KeyError, ValueError) as err:
            value, interval, verdict, reason = (math.nan, math.nan, UNTESTABLE,
                                                f"{type(err).__name__}: {err}")
        if verdict not in VERDICTS:
            raise RuntimeError(f"claim {claim.key!r} returned verdict {verdict!r}")
        rows.append({"claim": claim.text, "version": claim.version, "paper": claim.paper,
                     "this build": value, "± (2 SE)": interval, "criterion": claim.criterion,
                     "verdict": verdict, "why": reason, "chapter": claim.chapter,
                     "key": claim.key})
    return pd.DataFrame(rows)
