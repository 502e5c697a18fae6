"""The paper's claims, each with the statistic this build measures and a computed verdict.

Every claim of the paper (all versions, see ``docs/claims.md``) is a :class:`Claim`: its words,
the paper's value, the chapter that owns it, the paper's criterion
(:class:`slimlib.book.claims.rules.Criterion`) and a *statistic function* that turns this build's
tables into a :class:`slimlib.book.claims.statistics.Stat` (the value the criterion is applied to,
its 95 % interval, and what it was computed on). :func:`evaluate` judges every claim with the
one policy of :mod:`slimlib.book.claims.rules`: *holds* / *does not hold* only for evidence of
the kind, budget and data the claim is about and an interval that decides the criterion;
otherwise *not testable here*, with the reason and an indication (never counted). The chapter
that owns a claim calls :func:`evaluate` on the same tables, so a verdict in the introduction
can always be traced to a cell.

This module owns the claims table (:data:`CLAIMS`, :func:`select`, :func:`evaluate`). The
statistics live in :mod:`slimlib.book.claims.statistics` and :mod:`slimlib.book.claims.floor`, their
intervals in :mod:`slimlib.book.claims.runs`, the gathering of this build's tables in
:mod:`slimlib.book.claims.evidence`; the main names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from slimlib.book.claims import rules as er
from slimlib.book.claims.evidence import (
    ablation_model,
    gather,
    is_real_rs,
    order_rows,
    parts_tables,
)
from slimlib.book.claims.floor import embedding_floor, rs_above_floor
from slimlib.book.claims.rules import MEETS, WITHIN, Criterion
from slimlib.book.claims.statistics import (
    EXACT,
    FAILS,
    HOLDS,
    NOT_TESTABLE,
    UNTESTABLE,
    VERDICTS,
    Evidence,
    Stat,
    attention_floor,
    cv_10_33,
    cv_on_rs,
    ffn_floor,
    order_deviation,
    order_insensitivity,
    parts_floor,
    redundancy_regime,
    rs_85,
    slimmable_mae,
    slimmable_moco,
    smallest_width_retention,
    three_regimes,
    v1_sevenfold,
)

__all__ = ["VERDICTS", "Claim", "CLAIMS", "Evidence", "evaluate", "select", "is_real_rs",
           "gather", "smallest_width_retention", "embedding_floor", "scoreboard",
           "order_deviation", "parts_floor", "redundancy_regime", "COLUMNS",
           # also re-exported: the verdict constants, Stat and the evidence tables
           "HOLDS", "FAILS", "NOT_TESTABLE", "UNTESTABLE", "Stat", "ablation_model",
           "order_rows", "parts_tables"]

INF = math.inf


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: its words, the paper's value, the owning chapter, the paper's
    criterion and the statistic it is applied to; ``group`` names claims a chapter selects
    together (a claim with two parts is two claims, each with its own statistic)."""

    key: str
    version: str
    text: str
    paper: str
    chapter: str
    criterion: Criterion
    statistic: Callable[[Evidence], Stat]
    group: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("v1-sevenfold", "v1", "RS FMs keep > 71 % at 1 % FLOPs, ImageNet MAE < 10 %: "
          "a sevenfold gap", "> 71 % vs < 10 %", "RS vs CV",
          Criterion(7.0, INF, WITHIN, "RS / CV retention ≥ 7 at ≤ 1 % compute"), v1_sevenfold),
    Claim("rs-85", "camera-ready", "RS FMs keep ≈ 85 % mean k-NN retention at the smallest "
          "budget (0.8–6.4 % of compute)", "84.7 % (mean of 8 RS FMs × 4 datasets)",
          "Slimmability of RS FMs",
          Criterion(0.0, 1.0, MEETS, "within the paper's per-model spread"), rs_85),
    Claim("rs-above-controls", "this book", "(control the paper lacks) at the smallest width "
          "the slimmed RS model scores above its embedding-only floor", "—",
          "Slimmability of RS FMs",
          Criterion(0.0, INF, WITHIN, "accuracy above the floor > 0", strict=True), rs_above_floor),
    Claim("cv-10-33", "camera-ready", "CV MAE / DINOv2 keep only 10–33 % at their smallest "
          "budget (2.9 %) on ImageNet subsets", "10–33 %", "RS vs CV",
          Criterion(0.10, 0.33, MEETS, "within the paper's 10–33 %", max_width=0.23), cv_10_33),
    Claim("cv-74-vs-82-95", "camera-ready", "CV MAE moved to RS data keeps 74 %, below the "
          "82–95 % of RS FMs on the same data", "74 % vs 82–95 %", "RS vs CV",
          Criterion(0.0, INF, WITHIN, "RS − CV retention > 0", strict=True), cv_on_rs),
    Claim("slimmable-moco", "camera-ready", "Learned slimmable training helps contrastive "
          "(MoCo) pretraining", "MoCo: yes", "Learned slimmable training",
          Criterion(0.0, INF, WITHIN, "MoCo retention gain at s ≤ 0.25 > 0", strict=True), slimmable_moco,
          group="slimmable-moco-not-mae"),
    Claim("slimmable-mae", "camera-ready", "Learned slimmable training does not help MAE "
          "pretraining (v1: it helps both)", "MAE: no", "Learned slimmable training",
          Criterion(-INF, 0.0, WITHIN, "MAE retention gain at s ≤ 0.25 ≤ 0"), slimmable_mae,
          group="slimmable-moco-not-mae"),
    Claim("parts-attention", "camera-ready", "Attention-only slimming floors at ≈ 65–69 % "
          "compute", "65–69 %", "Post-hoc slimming",
          Criterion(0.65, 0.69, WITHIN, "65–69 % (every model's floor)"), attention_floor,
          group="parts-floors"),
    Claim("parts-ffn", "camera-ready", "FFN-only slimming floors at ≈ 34–37 % compute",
          "34–37 %", "Post-hoc slimming",
          Criterion(0.34, 0.37, WITHIN, "34–37 % (every model's floor)"), ffn_floor,
          group="parts-floors"),
    Claim("order", "camera-ready", "Which dimensions are kept (first/last/random) barely "
          "matters: ≤ 2.8 points from the random mean", "≤ 2.8 points", "Ablations",
          Criterion(-INF, 0.028, WITHIN, "max deviation ≤ 0.028"), order_insensitivity),
    Claim("regimes", "camera-ready", "Three redundancy regimes: monotonic, saturating, "
          "decoupled", "DOFA-L / TerraMind-L / Prithvi-600M", "Why it works",
          Criterion(-INF, INF, WITHIN, "each regime shown by one of three large RS FMs"),
          three_regimes),
)

#: The columns of :func:`evaluate`'s table.
COLUMNS = ["claim", "version", "paper", "this build", "interval", "criterion", "verdict", "why",
           "indication", "interval kind", "chapter", "key", "lo", "hi"]


def select(*keys: str) -> tuple[Claim, ...]:
    """The claims with these keys or groups (what a chapter that owns them evaluates)."""
    out: list[Claim] = []
    for key in keys:
        found = [c for c in CLAIMS if key in (c.key, c.group)]
        if not found:
            known = sorted({c.key for c in CLAIMS} | {c.group for c in CLAIMS} - {""})
            raise ValueError(f"unknown claim key {key!r}; known: {known}")
        out += [c for c in found if c not in out]
    return tuple(out)


def _interval_text(stat: Stat) -> str:
    if not (math.isfinite(stat.lo) and math.isfinite(stat.hi)):
        return "—"
    if stat.interval == EXACT:
        return "exact"
    return f"[{stat.lo:.3f}, {stat.hi:.3f}]"


def evaluate(ev: Evidence, claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """The claims table (:data:`COLUMNS`): one row per claim with this build's statistic, its
    interval and what the interval is, the criterion applied to that statistic, and the
    verdict of :func:`slimlib.book.claims.rules.judge` with its reason and indication.

    A statistic that raises (e.g. a table without the rows it needs) gives "not testable
    here" with the error as its reason, never a silent pass.
    """
    rows = []
    ev = ev.with_paper_axis()
    for claim in claims:
        try:
            stat = claim.statistic(ev)
        except (KeyError, ValueError) as err:
            stat = Stat(untestable=f"{type(err).__name__}: {err}")
        crit = stat.criterion or claim.criterion
        reason = stat.untestable
        for use in stat.uses:
            if reason is None:
                reason = er.out_of_scope(use.scope, models=use.models, datasets=use.datasets,
                                         reached=use.reached, pretrained=ev.pretrained,
                                         families=ev.families(), makers=ev.makers())
        ruling = er.judge(stat.value, stat.lo, stat.hi, crit, untestable=reason,
                          detail=stat.detail)
        indication = stat.indication or ruling.indication
        rows.append({"claim": claim.text, "version": claim.version, "paper": claim.paper,
                     "this build": stat.value, "interval": _interval_text(stat),
                     "criterion": str(crit), "verdict": ruling.verdict, "why": ruling.why,
                     "indication": indication if not ruling.counted else "",
                     "interval kind": stat.interval or "—", "chapter": claim.chapter,
                     "key": claim.key, "lo": stat.lo, "hi": stat.hi})
    return pd.DataFrame(rows, columns=COLUMNS)


def scoreboard(table: pd.DataFrame) -> dict[str, int]:
    """How many claims of :func:`evaluate`'s table hold / do not hold / are not testable here
    (indications are never counted)."""
    return er.scoreboard(table["verdict"])
