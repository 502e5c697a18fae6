"""The statistic of each claim: this build's tables in, a :class:`Stat` out.

:class:`Evidence` holds the tables a verdict may use; each statistic function (``rs_85``,
``cv_10_33``, ``slimmable_moco``, ...) reads it and returns a :class:`Stat`: the value the
criterion is applied to, its 95 % interval and what that interval is
(:mod:`slimlib.book.claims.runs`: paired image bootstrap, clustered over runs; binomial SE only for
tables without per-image outcomes, and then labelled so), and what the value was computed on
(:class:`Use`: model kind, models, datasets, compute reached) so that
:func:`slimlib.book.claims.rules.judge` can tell whether it is evidence of the claim's kind.
The public helpers (:func:`smallest_width_retention`, :func:`parts_floor`,
:func:`redundancy_regime`) are what chapters call on the same tables; the embedding-floor
statistics are in :mod:`slimlib.book.claims.floor`.
The claims table that ties each statistic to a claim is :data:`slimlib.book.claims.CLAIMS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from slimlib.book.claims import rules as er
from slimlib.book.claims.rules import FAILS, HOLDS, NOT_TESTABLE, VERDICTS, Criterion, Scope
from slimlib.book.claims.runs import pooled_statistic, probe_rows, smallest_width_runs
from slimlib.sweeping.controls import binomial_se, is_control

__all__ = ["HOLDS", "FAILS", "NOT_TESTABLE", "UNTESTABLE", "VERDICTS", "Evidence", "Stat", "Use",
           "smallest_width_retention", "parts_floor", "redundancy_regime", "paper_spread"]

#: Old name of :data:`slimlib.book.claims.rules.NOT_TESTABLE`.
UNTESTABLE = NOT_TESTABLE

RS_SCOPE = Scope(er.RS_FM, er.RS_DATA)


@dataclass
class Evidence:
    """This build's tables a verdict may use (any may be ``None``: that claim is untestable).

    Attributes:
        rs: sweep rows of the RS models on RS data; ``features``: their features rows.
        cv_own: CV models on natural images; ``cv_rs``: CV models on the RS data.
        controls: :func:`slimlib.sweeping.controls.compare` output of the RS models;
            ``control_rows``: the sweep rows behind it (models and random-init controls);
            ``floor``: :func:`slimlib.sweeping.controls.floor_scores` rows.
        slimmable: sweep rows of the regular/slimmable pairs; ``pairs``: the pairs.
        orders: ablation rows with ``order`` in first/last/random.
        parts: ``{"attn": compute table, "ffn": compute table}`` per model name.
        pretrained: whether the profile loads pretrained weights.
        kinds: model → ``(registry family, who pretrained it)`` for models the registry does
            not know (tests); others are looked up.
        profile: the resolved profile the rows come from (optional): with it, compute is read
            in the paper's FLOP convention (:meth:`with_paper_axis`).
    """

    rs: pd.DataFrame | None = None
    cv_own: pd.DataFrame | None = None
    cv_rs: pd.DataFrame | None = None
    controls: pd.DataFrame | None = None
    control_rows: pd.DataFrame | None = None
    floor: pd.DataFrame | None = None
    slimmable: pd.DataFrame | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    orders: pd.DataFrame | None = None
    parts: Mapping[str, Mapping[str, pd.DataFrame]] | None = None
    features: pd.DataFrame | None = None
    real_rs: bool = False
    pretrained: bool = True
    kinds: Mapping[str, tuple[str, str]] | None = None
    profile: Any = None

    def with_paper_axis(self) -> Evidence:
        """A copy whose RS and CV rows carry ``rel_compute_paper`` (the paper's FLOP
        convention, in which the claims' budgets are stated), when :attr:`profile` is set."""
        if self.profile is None:
            return self
        from slimlib.book.comparison import with_paper_axis

        def axis(rows: pd.DataFrame | None) -> pd.DataFrame | None:
            if rows is None or rows.empty or "rel_compute_paper" in rows:
                return rows
            return with_paper_axis(rows, profile=self.profile)

        return replace(self, rs=axis(self.rs), cv_own=axis(self.cv_own), cv_rs=axis(self.cv_rs))

    def kind_of(self, model: str) -> tuple[str, str]:
        """``(family, who pretrained it)`` of ``model``."""
        if self.kinds and model in self.kinds:
            return self.kinds[model]
        from slimlib.models import registry

        return registry.spec(model).family, er.pretrained_by(model, pretrained=self.pretrained)

    def families(self) -> dict[str, str]:
        return {m: f for m, (f, _) in (self.kinds or {}).items()}

    def makers(self) -> dict[str, str]:
        return {m: w for m, (_, w) in (self.kinds or {}).items()}


@dataclass(frozen=True)
class Use:
    """What a statistic was computed on: checked against ``scope`` by the rules of evidence."""

    scope: Scope
    models: tuple[str, ...]
    datasets: tuple[str, ...] = ()
    reached: float | None = None


@dataclass(frozen=True)
class Stat:
    """A claim's measured statistic (the number the criterion is applied to)."""

    value: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    interval: str = ""
    uses: tuple[Use, ...] = ()
    detail: str = ""
    untestable: str | None = None
    criterion: Criterion | None = None
    indication: str = ""


EXACT = "exact (a FLOP count: nothing is random)"


def _untestable(reason: str) -> Stat:
    return Stat(untestable=reason)


def _no_controls(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[~is_control(rows["model"])]


def _prefer(ev: Evidence, rows: pd.DataFrame, family: str) -> pd.DataFrame:
    """The rows of models of ``family`` pretrained by their authors, if there are any (the
    evidence a verdict needs); else all rows (then the rules make it an indication)."""
    real = [m for m in rows["model"].unique() if ev.kind_of(m) == (family, er.AUTHORS)]
    return rows[rows["model"].isin(real)] if real else rows


def _retention(v: Mapping) -> object:
    return v["small"] / v["full"]


def _span(values: pd.Series) -> str:
    return f"{values.min():.1%}–{values.max():.1%}" if len(values) else "—"


def _smallest(ev: Evidence, rows: pd.DataFrame | None, family: str, scope: Scope,
              what: str) -> Stat:
    rows = probe_rows(rows)
    if rows is None:
        return _untestable(f"no {what} sweep in this build")
    rows = _prefer(ev, _no_controls(rows), family)
    runs = smallest_width_runs(rows)
    if not runs:
        return _untestable(f"no {what} run has both s = 1 and a smaller width")
    est = pooled_statistic([r for _, r in runs], _retention)
    info = pd.DataFrame([i for i, _ in runs])
    per_run = ", ".join(f"{i['model']}@{i['dataset']} "
                        f"{r['small']['value'].mean() / r['full']['value'].mean():.3f}"
                        for i, r in runs)
    use = Use(scope, tuple(info["model"].unique()), tuple(info["dataset"].unique()),
              float(info["rel_compute"].max()))
    return Stat(est.value, est.lo, est.hi, est.label, (use,),
                f"mean retention of {len(runs)} model × dataset run(s) at their smallest width "
                f"({_span(info['rel_compute'])} compute"
                + (", paper's FLOP convention" if "rel_compute_paper" in rows else "")
                + f"): {per_run}")


def paper_spread() -> tuple[float, float, str, str]:
    """The paper's per-model mean k-NN retention at the smallest budget (every published RS
    FM, its four classification datasets): ``(lowest, highest, its model, its model)``."""
    from slimlib.book.reference import smallest_budget_retention

    means = smallest_budget_retention()["mean"].drop("mean over models")
    return float(means.min()), float(means.max()), str(means.idxmin()), str(means.idxmax())


def rs_85(ev: Evidence) -> Stat:
    stat = _smallest(ev, ev.rs, "rs", Scope(er.RS_FM, er.RS_DATA, budget=0.064), "RS")
    lo, hi, low, high = paper_spread()
    crit = Criterion(lo, hi, er.MEETS, max_width=hi - lo,
                     text=f"within the paper's per-model means, {lo:.3f} ({low}) – "
                          f"{hi:.3f} ({high})")
    return replace(stat, criterion=crit)


def cv_10_33(ev: Evidence) -> Stat:
    return _smallest(ev, ev.cv_own, "cv", Scope(er.CV_FM, er.IMAGENET_DATA, budget=0.029),
                     "CV (natural images)")


def v1_sevenfold(ev: Evidence) -> Stat:
    rs = _smallest(ev, ev.rs, "rs", Scope(er.RS_FM, er.RS_DATA, budget=0.01), "RS")
    cv = _smallest(ev, ev.cv_own, "cv", Scope(er.CV_FM, er.IMAGENET_DATA, budget=0.01),
                   "CV (natural images)")
    if rs.untestable or cv.untestable:
        return _untestable(rs.untestable or cv.untestable)
    value = rs.value / cv.value
    bounds = [a / b for a in (rs.lo, rs.hi) for b in (cv.lo, cv.hi) if b > 0]
    lo, hi = (min(bounds), max(bounds)) if len(bounds) == 4 else (math.nan, math.nan)
    return Stat(value, lo, hi, "ratio of the two 95 % intervals' ends (conservative)",
                rs.uses + cv.uses, f"RS {rs.value:.3f} / CV {cv.value:.3f}")


def _same_images_runs(groups: Mapping[str, pd.DataFrame], datasets: list[str]) -> list[dict]:
    """Per dataset, one run with ``"<label>:<model>:small|full"`` conditions."""
    runs = []
    for dataset in datasets:
        run = {}
        for label, rows in groups.items():
            for info, r in smallest_width_runs(rows[rows["dataset"] == dataset]):
                run[f"{label}:{info['model']}:small"] = r["small"]
                run[f"{label}:{info['model']}:full"] = r["full"]
        runs.append(run)
    return runs


def _mean_retention(v: Mapping, label: str) -> object:
    names = sorted({k.split(":")[1] for k in v if k.startswith(label + ":")})
    return sum(v[f"{label}:{n}:small"] / v[f"{label}:{n}:full"] for n in names) / len(names)


def cv_on_rs(ev: Evidence) -> Stat:
    rs, cv = probe_rows(ev.rs), probe_rows(ev.cv_rs)
    if rs is None or cv is None:
        return _untestable("needs CV and RS models on the same RS data")
    rs, cv = _prefer(ev, _no_controls(rs), "rs"), _prefer(ev, _no_controls(cv), "cv")
    common = sorted(set(rs["dataset"]) & set(cv["dataset"]))
    if not common:
        return _untestable("no RS dataset shared by RS and CV runs")
    rs, cv = rs[rs["dataset"].isin(common)], cv[cv["dataset"].isin(common)]
    est = pooled_statistic(_same_images_runs({"rs": rs, "cv": cv}, common),
                           lambda v: _mean_retention(v, "rs") - _mean_retention(v, "cv"))
    uses = (Use(RS_SCOPE, tuple(rs["model"].unique()), tuple(common)),
            Use(Scope(er.CV_FM, er.RS_DATA), tuple(cv["model"].unique()), tuple(common)))
    return Stat(est.value, est.lo, est.hi, est.label, uses,
                f"RS − CV retention at each model's smallest width on {', '.join(common)}")


def _pair_runs(rows: pd.DataFrame, regular: str, slim: str, max_width: float) -> list[dict]:
    from slimlib.sweeping.intervals import merge_identical_widths

    runs = []
    for _, part in rows[rows["model"].isin([regular, slim])].groupby("dataset"):
        part = merge_identical_widths(part.reset_index(drop=True).assign(
            width=part["width"].astype(float).round(9).to_numpy()))
        widths = [set(part[part["model"] == m]["width"]) for m in (regular, slim)]
        shared = sorted(w for w in widths[0] & widths[1] if w <= max_width + 1e-9 or w == 1.0)
        if 1.0 not in shared or len(shared) < 2:
            continue
        runs.append({f"{role}:{w:g}": part[(part["model"] == m) & np.isclose(part["width"], w)]
                     for role, m in (("reg", regular), ("slim", slim)) for w in shared})
    return runs


def _gain(v: Mapping) -> object:
    widths = sorted({k.split(":")[1] for k in v} - {"1"})
    return sum(v[f"slim:{w}"] / v["slim:1"] - v[f"reg:{w}"] / v["reg:1"]
               for w in widths) / len(widths)


def _slimmable(ev: Evidence, method: str, *, max_width: float = 0.25) -> Stat:
    rows = probe_rows(ev.slimmable)
    if rows is None or not ev.pairs:
        return _untestable("no regular/slimmable pairs in this build")
    pairs = [(r, s) for r, s in ev.pairs if method.lower() in r.lower()]
    if not pairs:
        return _untestable(f"no {method} regular/slimmable pair in this build")
    regular, slim = pairs[0]
    runs = _pair_runs(rows, regular, slim, max_width)
    if not runs:
        return _untestable(f"{regular} and {slim} share no widths ≤ {max_width:g} and s = 1")
    est = pooled_statistic(runs, _gain)
    per = ", ".join(f"{float(_gain({k: d['value'].mean() for k, d in r.items()})):+.3f}"
                    for r in runs)
    datasets = tuple(sorted(rows[rows["model"] == regular]["dataset"].unique()))
    return Stat(est.value, est.lo, est.hi, est.label,
                (Use(Scope(er.PAIR, er.RS_DATA), (regular, slim), datasets),),
                f"{slim} − {regular} retention, mean over widths ≤ {max_width:g} (identical "
                f"widths merged), per dataset {per}")


def slimmable_moco(ev: Evidence) -> Stat:
    return _slimmable(ev, "MoCo")


def slimmable_mae(ev: Evidence) -> Stat:
    return _slimmable(ev, "MAE")


def parts_floor(table: pd.DataFrame) -> float:
    """The smallest relative compute a compute table reaches (its compute floor)."""
    return float(table["rel_compute"].min())


def _floors(ev: Evidence, part: str, lo: float, hi: float) -> Stat:
    from slimlib.constants import LAYER_TYPE_MODELS

    if not ev.parts:
        return _untestable("no per-layer compute tables in this build")
    floors = {m: parts_floor(t[part]) for m, t in ev.parts.items()}
    # the claim is about the paper's layer-type ablation models: judge those where this build
    # tabulates them; otherwise every tabulated model is a stand-in (an indication)
    judged = {m: f for m, f in floors.items() if m in LAYER_TYPE_MODELS} or floors
    # the model furthest outside the band (inside: the one nearest its edge) decides
    worst = max(judged, key=lambda m: (max(lo - judged[m], judged[m] - hi),
                                       -abs(judged[m] - (lo + hi) / 2)))
    value = judged[worst]
    return Stat(value, value, value, EXACT,
                (Use(Scope(er.ARCHITECTURE, models=LAYER_TYPE_MODELS), tuple(judged)),),
                "compute floors (paper's FLOP convention): "
                + ", ".join(f"{m} {f:.1%}" for m, f in floors.items()) + f"; shown: {worst}")


def attention_floor(ev: Evidence) -> Stat:
    return _floors(ev, "attn", 0.65, 0.69)


def ffn_floor(ev: Evidence) -> Stat:
    return _floors(ev, "ffn", 0.34, 0.37)


def _order_runs(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    from slimlib.sweeping.intervals import merge_identical_widths

    rows = rows.reset_index(drop=True).assign(width=rows["width"].astype(float).round(9)
                                              .to_numpy())
    kept = merge_identical_widths(rows[rows["order"] == "first"])
    run = {}
    for w in sorted(kept["width"].unique()):
        if np.isclose(w, 1.0):
            continue
        for order in ("first", "last", "random"):
            part = rows[(rows["order"] == order) & np.isclose(rows["width"], w)]
            if not part.empty:
                run[f"{order}:{w:g}"] = part
    return run


def _deviation(order: str, width: str) -> object:
    return lambda v: abs(v[f"{order}:{width}"] - v[f"random:{width}"])


def order_insensitivity(ev: Evidence) -> Stat:
    """The largest |first or last − random| k-NN accuracy over widths < 1. Its interval:
    the lower end is the paired-bootstrap lower end at the width and order that deviate most
    (the maximum is at least that deviation), the upper end the largest upper end over all
    widths and orders (every deviation is at most that), so the bootstrap of a maximum, which
    is biased upwards, is never used."""
    rows = ev.orders
    if rows is None or rows.empty:
        return _untestable("no first/last/random ablation in this build")
    rows = rows[rows["protocol"] == "knn"]
    if not {"first", "last", "random"} <= set(rows["order"]):
        return _untestable("no first/last/random ablation in this build")
    run = _order_runs(rows)
    widths = sorted({k.split(":")[1] for k in run})
    ests = {(o, w): pooled_statistic([run], _deviation(o, w)) for w in widths
            for o in ("first", "last") if f"{o}:{w}" in run and f"random:{w}" in run}
    if not ests:
        return _untestable("no width < 1 with first/last and random rows")
    (order, width), top = max(ests.items(), key=lambda kv: kv[1].value)
    hi = max(e.hi for e in ests.values())
    model, dataset = rows["model"].iloc[0], rows["dataset"].iloc[0]
    return Stat(top.value, top.lo, hi,
                f"lower end: {top.label} at s = {width} ({order}); upper end: the largest "
                f"over {len(ests)} width × order deviations",
                (Use(RS_SCOPE, (model,), (dataset,)),),
                f"max over {len(widths)} widths < 1 of |first or last − random| k-NN "
                f"accuracy, {model} on {dataset}; largest at s = {width} ({order})")


def order_deviation(rows: pd.DataFrame) -> tuple[float, float, float]:
    """``(max deviation, lo, hi)`` of first/last from the random order (the order claim's
    statistic and its 95 % interval)."""
    stat = order_insensitivity(Evidence(orders=rows))
    return stat.value, stat.lo, stat.hi


def redundancy_regime(rows: pd.DataFrame) -> str:
    """Classify one model × dataset's effective dimensionality (participation ratio) against
    compute as the paper's ``"monotonic"`` (d_eff falls with compute and retention follows it:
    Spearman ≥ 0.8), ``"saturating"`` (d_eff reaches 90 % of its maximum by 40 % compute) or
    ``"decoupled"`` (d_eff varies > 2.5× while retention stays ≥ 0.9), else ``"other"``.

    ``rows``: sweep rows with ``participation_ratio`` features rows and k-NN rows.
    """
    from slimlib.sweeping import retention

    deff = rows[rows["metric"] == "participation_ratio"].groupby("width")["value"].mean()
    knn = rows[rows["protocol"] == "knn"]
    ret = retention(knn).groupby("width")["retention"].mean()
    comp = rows.groupby("width")["rel_compute"].mean()
    frame = pd.concat({"deff": deff, "ret": ret, "x": comp}, axis=1).dropna().sort_values("x")
    if len(frame) < 4:
        return "other"
    if frame["deff"].max() > 2.5 * frame["deff"].min() and frame["ret"].min() >= 0.9:
        return "decoupled"
    if frame["ret"].corr(frame["deff"], method="spearman") >= 0.8:
        return "monotonic"
    early = frame[frame["x"] <= 0.4]["deff"]
    if len(early) and early.max() >= 0.9 * frame["deff"].max():
        return "saturating"
    return "other"


def three_regimes(ev: Evidence) -> Stat:
    if ev.features is None or ev.rs is None:
        return _untestable("no redundancy metrics in this build")
    rows = _no_controls(pd.concat([ev.features, ev.rs]))
    found = {f"{m}@{d}": redundancy_regime(part) for (m, d), part in
             rows.groupby(["model", "dataset"])}
    shown = "; ".join(f"{k}: {v}" for k, v in found.items())
    return Stat(untestable="the paper's three regimes are three different large FMs "
                           "(DOFA-L, TerraMind-L, Prithvi-600M); a regime is a property of "
                           f"one model, and this build has {rows['model'].nunique()} RS "
                           "model(s)",
                indication=f"indication only: regimes of this build's curves: {shown}")


def smallest_width_retention(rows: pd.DataFrame) -> pd.DataFrame:
    """Retention at each model × dataset's smallest width (k-NN, seed means), with its SE.

    Returns ``model, dataset, width, rel_compute, value, full, retention, se`` where ``se`` is
    the SE of ``value / full`` from the binomial SEs of both accuracies (a display helper; the
    claims' intervals come from :mod:`slimlib.book.claims.runs`).
    """
    from slimlib.sweeping import retention

    ret = retention(rows)
    n = rows.groupby(["model", "dataset"])["n_test"].max().rename("n_test")
    small = ret.loc[ret.groupby(["model", "dataset", "protocol"])["width"].idxmin()]
    small = small.join(n, on=["model", "dataset"])
    se_v = binomial_se(small["mean"], small["n_test"])
    se_f = binomial_se(small["full"], small["n_test"])
    small = small.assign(value=small["mean"],
                         se=small["retention"] * np.sqrt((se_v / small["mean"]) ** 2
                                                         + (se_f / small["full"]) ** 2))
    cols = ["model", "dataset", "width", "rel_compute", "value", "full", "retention", "se"]
    return small[[c for c in cols if c in small]].reset_index(drop=True)
