"""The statistic of each claim: this build's tables in, ``(statistic, interval, verdict,
reason)`` out.

:class:`Evidence` holds the tables a verdict may use; each statistic function (``rs_85``,
``cv_10_33``, ``slimmable_training``, ...) reads it and returns a :data:`Result`, and the
public helpers (:func:`smallest_width_retention`, :func:`slimmable_gain`, :func:`parts_floor`,
:func:`order_deviation`, :func:`redundancy_regime`) are what the owning chapters call on the
same tables. Intervals are ± 2 standard errors from the binomial SE of each accuracy
(:func:`slimlib.controls.binomial_se`). The claims table that ties each statistic to a claim
of the paper is :data:`slimlib.claims.CLAIMS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slimlib.controls import binomial_se, is_control

__all__ = ["HOLDS", "FAILS", "UNTESTABLE", "VERDICTS", "Evidence", "Result",
           "smallest_width_retention", "slimmable_gain", "order_deviation", "parts_floor",
           "redundancy_regime"]

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable in this profile"
#: The three verdicts a claim can get.
VERDICTS = (HOLDS, FAILS, UNTESTABLE)


@dataclass
class Evidence:
    """This build's tables a verdict may use (any may be ``None``: that claim is untestable).

    Attributes:
        rs: k-NN sweep rows of the RS models on RS data.
        cv_own: CV models on natural images; ``cv_rs``: CV models on the RS data.
        controls: :func:`slimlib.controls.compare` output of the RS models.
        slimmable: sweep rows of the regular/slimmable pairs; ``pairs``: the pairs.
        orders: ablation rows with ``order`` in first/last/random.
        parts: ``{"attn": compute table, "ffn": compute table}`` per model name.
        features: ``protocol="features"`` rows of the RS models.
        real_rs: whether the RS models are pretrained by their authors (not miniatures).
    """

    rs: pd.DataFrame | None = None
    cv_own: pd.DataFrame | None = None
    cv_rs: pd.DataFrame | None = None
    controls: pd.DataFrame | None = None
    slimmable: pd.DataFrame | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    orders: pd.DataFrame | None = None
    parts: Mapping[str, Mapping[str, pd.DataFrame]] | None = None
    features: pd.DataFrame | None = None
    real_rs: bool = False
    pretrained: bool = True


Result = tuple[float, float, str, str]


def _knn(rows: pd.DataFrame | None) -> pd.DataFrame | None:
    if rows is None or rows.empty:
        return None
    out = rows[(rows["protocol"] == "knn")]
    return out if not out.empty else None


def smallest_width_retention(rows: pd.DataFrame) -> pd.DataFrame:
    """Retention at each model × dataset's smallest width (k-NN, seed means), with its SE.

    Returns ``model, dataset, width, rel_compute, value, full, retention, se`` where ``se`` is
    the SE of ``value / full`` from the binomial SEs of both accuracies.
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


def _mean_se(values: pd.Series, ses: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(np.sqrt((ses ** 2).sum()) / len(ses))


def _overlaps(mean: float, se: float, lo: float, hi: float) -> str:
    if mean + 2 * se < lo or mean - 2 * se > hi:
        return FAILS
    return HOLDS


def _no_controls(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[~is_control(rows["model"])]


def rs_85(ev: Evidence) -> Result:
    rows = _knn(ev.rs)
    if rows is None:
        return math.nan, math.nan, UNTESTABLE, "no RS sweep in this build"
    small = smallest_width_retention(_no_controls(rows))
    mean, se = _mean_se(small["retention"], small["se"])
    verdict = _overlaps(mean, se, 0.80, 0.90)
    reason = (f"mean over {len(small)} model × dataset runs at their smallest width "
              f"({small['rel_compute'].min():.1%}–{small['rel_compute'].max():.1%} compute)")
    if not ev.real_rs:
        reason += "; the RS models are slimlib's miniatures, not foundation models"
    return mean, 2 * se, verdict, reason


def rs_above_controls(ev: Evidence) -> Result:
    if ev.controls is None or ev.controls.empty:
        return math.nan, math.nan, UNTESTABLE, "no control sweep in this build"
    from slimlib.controls import at_smallest

    small = at_smallest(ev.controls[ev.controls["protocol"] == "knn"])
    above = small["above_floor"] if "above_floor" in small else small["above_random"]
    se = small["above_floor_se"] if "above_floor_se" in small else small["above_random_se"]
    mean, err = _mean_se(above, se)
    readings = ", ".join(f"{r.model}@{r.dataset}: {r['vs embedding-only floor']}"
                         if "vs embedding-only floor" in small else f"{r.model}@{r.dataset}"
                         for _, r in small.iterrows())
    verdict = HOLDS if mean - 2 * err > 0 else FAILS
    return mean, 2 * err, verdict, f"accuracy above the embedding-only floor ({readings})"


def cv_10_33(ev: Evidence) -> Result:
    rows = _knn(ev.cv_own)
    if rows is None:
        return math.nan, math.nan, UNTESTABLE, "no CV model on natural images in this build"
    small = smallest_width_retention(rows)
    mean, se = _mean_se(small["retention"], small["se"])
    reason = (f"CV models {sorted(small['model'].unique())} on "
              f"{sorted(small['dataset'].unique())}, smallest width "
              f"({small['rel_compute'].min():.1%} compute); slimlib miniatures, not ImageNet "
              "MAE/DINOv2")
    return mean, 2 * se, _overlaps(mean, se, 0.10, 0.33), reason


def v1_sevenfold(ev: Evidence) -> Result:
    rows = _knn(ev.rs)
    if rows is None:
        return math.nan, math.nan, UNTESTABLE, "no RS sweep in this build"
    floor = float(rows["rel_compute"].min())
    if floor > 0.015:
        return (math.nan, math.nan, UNTESTABLE,
                f"the RS models of this build cannot go below {floor:.1%} of compute "
                "(their unslimmed embeddings and norms), so '1 % FLOPs' is out of reach")
    cv = _knn(ev.cv_own)
    if cv is None:
        return math.nan, math.nan, UNTESTABLE, "no CV model on natural images in this build"
    rs_s = smallest_width_retention(_no_controls(rows))
    cv_s = smallest_width_retention(cv)
    ratio = float(rs_s["retention"].mean() / cv_s["retention"].mean())
    return ratio, math.nan, HOLDS if ratio >= 7 else FAILS, "RS / CV retention at ≈1 % compute"


def cv_on_rs(ev: Evidence) -> Result:
    rs, cv = _knn(ev.rs), _knn(ev.cv_rs)
    if rs is None or cv is None:
        return math.nan, math.nan, UNTESTABLE, "needs CV and RS models on the same RS data"
    rs_s = smallest_width_retention(_no_controls(rs))
    cv_s = smallest_width_retention(cv)
    common = sorted(set(rs_s["dataset"]) & set(cv_s["dataset"]))
    if not common:
        return math.nan, math.nan, UNTESTABLE, "no RS dataset shared by RS and CV runs"
    rs_m, rs_se = _mean_se(*(rs_s[rs_s["dataset"].isin(common)][c] for c in ("retention", "se")))
    cv_m, cv_se = _mean_se(*(cv_s[cv_s["dataset"].isin(common)][c] for c in ("retention", "se")))
    diff, se = rs_m - cv_m, math.hypot(rs_se, cv_se)
    verdict = HOLDS if diff > 2 * se else FAILS
    return diff, 2 * se, verdict, (f"RS {rs_m:.1%} − CV {cv_m:.1%} retention at the smallest "
                                   f"width on {common}")


def slimmable_gain(rows: pd.DataFrame, regular: str, slimmable: str, *,
                   max_width: float = 0.25) -> tuple[float, float]:
    """Mean k-NN retention of ``slimmable`` minus ``regular`` over widths ≤ ``max_width``
    (all datasets they share), and its SE."""
    from slimlib.sweeping import retention

    ret = retention(rows[rows["model"].isin([regular, slimmable])])
    ret = ret[ret["width"] <= max_width + 1e-9]
    n = rows.groupby(["model", "dataset"])["n_test"].max()
    ret = ret.join(n.rename("n_test"), on=["model", "dataset"])
    ret["se"] = binomial_se(ret["mean"], ret["n_test"]) / ret["full"]
    piv = ret.pivot_table(index=["dataset", "width"], columns="model",
                          values=["retention", "se"])
    diff = piv["retention"][slimmable] - piv["retention"][regular]
    se = np.sqrt(piv["se"][slimmable] ** 2 + piv["se"][regular] ** 2)
    return float(diff.mean()), float(np.sqrt((se ** 2).sum()) / len(se))


def slimmable_training(ev: Evidence) -> Result:
    rows = _knn(ev.slimmable)
    if rows is None or not ev.pairs:
        return math.nan, math.nan, UNTESTABLE, "no regular/slimmable pairs in this build"
    if not ev.pretrained:
        return math.nan, math.nan, UNTESTABLE, "random weights (nothing was pretrained)"
    gains = {}
    for regular, slim in ev.pairs:
        method = "MoCo" if "moco" in regular else "MAE" if "mae" in regular else regular
        gains[method] = slimmable_gain(rows, regular, slim)
    if not {"MoCo", "MAE"} <= set(gains):
        return math.nan, math.nan, UNTESTABLE, "needs one MoCo and one MAE pair"
    (g_moco, se_moco), (g_mae, se_mae) = gains["MoCo"], gains["MAE"]
    holds = g_moco > 2 * se_moco and g_mae <= 2 * se_mae
    return g_moco - g_mae, 2 * math.hypot(se_moco, se_mae), HOLDS if holds else FAILS, (
        f"retention gain of slimmable training at s ≤ 0.25: MoCo {g_moco:+.3f} ± {2 * se_moco:.3f}"
        f", MAE {g_mae:+.3f} ± {2 * se_mae:.3f} (tiny models pretrained here)")


def parts_floor(table: pd.DataFrame) -> float:
    """The smallest relative compute a compute table reaches (its compute floor)."""
    return float(table["rel_compute"].min())


def attention_ffn_floors(ev: Evidence) -> Result:
    if not ev.parts:
        return math.nan, math.nan, UNTESTABLE, "no per-layer compute tables in this build"
    attn = [parts_floor(t["attn"]) for t in ev.parts.values()]
    ffn = [parts_floor(t["ffn"]) for t in ev.parts.values()]
    ok = all(0.60 <= a <= 0.75 for a in attn) and all(0.30 <= f <= 0.42 for f in ffn)
    reason = (f"compute floors (paper's FLOP convention) of {sorted(ev.parts)}: attention-only "
              + ", ".join(f"{a:.1%}" for a in attn) + "; FFN-only "
              + ", ".join(f"{f:.1%}" for f in ffn))
    return min(attn), math.nan, HOLDS if ok else FAILS, reason


def order_deviation(rows: pd.DataFrame) -> tuple[float, float]:
    """Max over widths of |first − random mean| and |last − random mean| (k-NN accuracy),
    and the SE of that difference at the maximising width."""
    piv = rows.pivot_table(index="width", columns="order", values="value", aggfunc="mean")
    n = float(rows["n_test"].max())
    dev = piv[["first", "last"]].sub(piv["random"], axis=0).abs()
    width = dev.max(axis=1).idxmax()
    value = float(dev.loc[width].max())
    return value, float(np.sqrt(2) * binomial_se(piv.loc[width, "random"], n))


def order_insensitivity(ev: Evidence) -> Result:
    rows = _knn(ev.orders)
    if rows is None or not {"first", "last", "random"} <= set(rows["order"]):
        return math.nan, math.nan, UNTESTABLE, "no first/last/random ablation in this build"
    dev, se = order_deviation(rows)
    verdict = HOLDS if dev <= 0.028 + 2 * se else FAILS
    return dev, 2 * se, verdict, (f"{rows['model'].iloc[0]} on {rows['dataset'].iloc[0]}, "
                                  f"{rows['width'].nunique()} widths")


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


def three_regimes(ev: Evidence) -> Result:
    if ev.features is None or ev.rs is None:
        return math.nan, math.nan, UNTESTABLE, "no redundancy metrics in this build"
    rows = pd.concat([ev.features, ev.rs])
    rows = _no_controls(rows)
    found = {f"{m}@{d}": redundancy_regime(part) for (m, d), part in
             rows.groupby(["model", "dataset"])}
    kinds = sorted(set(found.values()) - {"other"})
    reason = "; ".join(f"{k}: {v}" for k, v in found.items())
    if rows["model"].nunique() < 3:
        return (float(len(kinds)), math.nan, UNTESTABLE,
                f"the paper's regimes are three different large FMs; this build has "
                f"{rows['model'].nunique()} RS model(s) ({reason})")
    return float(len(kinds)), math.nan, HOLDS if len(kinds) == 3 else FAILS, reason
