"""The plain answer of a slimmability report and the evidence behind it.

:func:`evidence` turns the per-image outcomes of the diagnosis sweep into absolute scores with
95 % intervals (a stratified bootstrap over the test images, probe seeds resampled too:
:func:`slimlib.sweeping.intervals.bootstrap`), retention intervals paired with the full-width
model on the same images, the random-init control's absolute score and the chance level, and
the warnings a practitioner must see. :func:`answer` is the one sentence the report and the
CLI open with. :func:`fmt` rounds a value to what its interval supports.

Everything here reads the result dict of :func:`slimlib.diagnose` (plus the sweep table for
the outcomes); nothing here runs a model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["compare_name", "role", "evidence", "answer", "warnings", "notes", "fmt", "decimals",
           "DEFINITIONS", "NEAR_CHANCE", "OVERHEAD_RATIO", "summary_lines"]

#: A full-width score whose interval reaches below chance + this (in score units) is "near
#: chance".
NEAR_CHANCE = 0.1
#: Latency at the smallest width over latency at full width above which the report says
#: that fixed per-call overhead dominates.
OVERHEAD_RATIO = 0.8

#: What every number of the report means (shown in the report itself).
DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("score", "balanced (macro) accuracy of a k-NN probe (k = 5, cosine) on frozen features of "
              "the test images; 1 = every image right."),
    ("interval", "95 % percentile interval of a stratified bootstrap over the test images "
                 "(and over the probe's draws when there are several): how much the number "
                 "could move with another test set of the same size."),
    ("retention", "score at width s divided by the score of the full-width model (s = 1) on "
                  "the same test images; its interval is paired (both scores resampled on the "
                  "same images)."),
    ("width s", "fraction of attention head dimensions and FFN units each block keeps."),
    ("relative compute", "FLOPs of the slimmed model divided by the full model's (attention "
                         "included)."),
    ("compute floor", "the relative compute at one head dimension and one FFN unit per block: "
                      "the patch embedding, norms and token mixing that slimming cannot "
                      "remove."),
    ("control", "the same architecture with random weights, through the same slimming and "
                "probe: what the architecture and the probe give without learned weights. A "
                "model not clearly above its control has learned little that the probe uses."),
    ("chance", "the score of guessing: 1 / number of classes for balanced accuracy."),
    ("CV retention", "retention by k-fold cross-validation on the training images only; the "
                     "recommended width is the smallest s at which it, and at every larger "
                     "width, reaches the target. The test images never choose the width."),
    ("slimmability score S", "area under retention vs log relative compute over the measured "
                             "range, normalised: 1 = all of the score kept at every measured "
                             "compute."),
)


def compare_name(name: str) -> str:
    """The sweep's name of the compared checkpoint of model ``name``."""
    return f"{name} [compared checkpoint]"


def role(sweep_name: str, name: str) -> str:
    """``"model"``, ``"control"`` or ``"compare"``: which model of a diagnosis of ``name`` a
    sweep row belongs to."""
    if sweep_name == name:
        return "model"
    return "compare" if sweep_name == compare_name(name) else "control"


def decimals(half_width: float | None, default: int = 3) -> int:
    """Decimals that keep 2 significant digits of ``half_width`` (``default`` without one)."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return default
    return int(min(4, max(0, 1 - math.floor(math.log10(half_width)))))


def fmt(value: float | None, lo: float | None = None, hi: float | None = None, *,
        default: int = 3) -> str:
    """``value [lo, hi]`` rounded to 2 significant digits of the interval's half-width
    (``value`` alone, at ``default`` decimals, without an interval)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{value:.{default}f}"
    d = decimals((hi - lo) / 2, default)
    return f"{value:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def _est(value: float, draws: np.ndarray) -> dict[str, float]:
    from slimlib.sweeping.intervals import interval

    lo, hi = interval(draws)
    return {"value": float(value), "lo": lo, "hi": hi}


def evidence(result: dict[str, Any], table: Any, *, seed: int = 0) -> dict[str, Any]:
    """Scores with intervals, the control, chance and the warnings of a diagnosis.

    Args:
        result: the result dict of :func:`slimlib.diagnose` (needs ``model``, ``classes``,
            ``rows``, ``keep``, ``recommended_width``, ``recommended_test_retention``).
        table: the diagnosis sweep table (rows with ``model, protocol, width, outcomes``).
        seed: seed of the bootstrap.

    Returns:
        ``{"chance", "n_classes", "widths": {width: {"score", "retention", "control_score",
        "control_retention"}}, "full", "control_full", "gain_over_control", "warnings",
        "notes"}``; each estimate is ``{"value", "lo", "hi"}`` (intervals NaN when the rows
        carry no per-image outcomes).
    """
    from slimlib.sweeping.intervals import bootstrap
    from slimlib.sweeping.outcomes import decode_all

    name = result["model"]
    knn = table[table["protocol"] == "knn"]
    groups: dict[tuple[str, float], list] = {}
    for (mname, width), grp in knn.groupby(["model", "width"], sort=False):
        who = role(mname, name)
        outs = decode_all(grp["outcomes"]) if "outcomes" in grp else None
        if outs is None:
            groups = {}
            break
        groups[(who, round(float(width), 9))] = outs
    n_classes = len(result["classes"])
    ev: dict[str, Any] = {"chance": 1.0 / n_classes, "n_classes": n_classes, "widths": {}}
    observed: dict[str, float] = {}
    draws: dict[str, np.ndarray] = {}
    if groups:
        observed, draws = bootstrap({f"{w}/{s}": o for (w, s), o in groups.items()}, seed=seed)
    nan = np.full(1, math.nan)
    roles = ("model", "control", "compare") if result.get("compare_model") else ("model",
                                                                                "control")
    for row in result["rows"]:
        w = row["width"]
        entry = {}
        for who in roles:
            key, full = f"{who}/{w}", f"{who}/1.0"
            if key in draws:
                entry[f"{who}_score"] = _est(observed[key], draws[key])
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = draws[key] / draws[full]
                entry[f"{who}_retention"] = _est(observed[key] / observed[full]
                                                 if observed[full] > 0 else math.nan, ratio)
            elif who == "model" or (who == "control"
                                    and row.get("control_retention") is not None):
                value = row["score"] if who == "model" else math.nan
                entry[f"{who}_score"] = _est(value, nan)
                entry[f"{who}_retention"] = _est(row["retention"] if who == "model"
                                                 else row["control_retention"], nan)
        if f"compare/{w}" in draws:  # the compared checkpoint minus the model, paired
            entry["compare_minus_model"] = _est(
                observed[f"compare/{w}"] - observed[f"model/{w}"],
                draws[f"compare/{w}"] - draws[f"model/{w}"])
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = (draws[f"compare/{w}"] / draws["compare/1.0"]
                        - draws[f"model/{w}"] / draws["model/1.0"])
            entry["compare_minus_model_retention"] = _est(
                entry["compare_retention"]["value"] - entry["model_retention"]["value"], diff)
        ev["widths"][w] = entry
    ev["full"] = ev["widths"][1.0]["model_score"]
    ev["control_full"] = ev["widths"][1.0].get("control_score")
    if "model/1.0" in draws and "control/1.0" in draws:
        ev["gain_over_control"] = _est(observed["model/1.0"] - observed["control/1.0"],
                                       draws["model/1.0"] - draws["control/1.0"])
    ev["warnings"] = warnings(result, ev)
    ev["unreliable"] = _unreliable(result, ev)
    ev["notes"] = notes(result, ev)
    return ev


def _above(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether interval ``a`` lies wholly above interval ``b`` (no interval: the values)."""
    if all(math.isfinite(x) for x in (a["lo"], b["hi"])):
        return a["lo"] > b["hi"]
    return a["value"] > b["value"]


def _near_chance(ev: dict[str, Any]) -> bool:
    full = ev["full"]
    low = full["lo"] if math.isfinite(full["lo"]) else full["value"]
    return low < ev["chance"] + NEAR_CHANCE


def _not_above_control(ev: dict[str, Any]) -> bool:
    ctrl = ev.get("control_full")
    return ctrl is not None and math.isfinite(ctrl["value"]) and not _above(ev["full"], ctrl)


def _unreliable(result: dict[str, Any], ev: dict[str, Any]) -> bool:
    """Whether the answer says little about what trained weights learned: random weights, a
    full-width model near chance, or one not clearly above its control."""
    return bool(result.get("random_weights")) or _near_chance(ev) or _not_above_control(ev)


def warnings(result: dict[str, Any], ev: dict[str, Any]) -> list[str]:
    """The warnings of a report: random weights, a full-width model near chance or not clearly
    above its control, and a held-out test retention at the recommended width below the
    target."""
    out = []
    full, chance, ctrl = ev["full"], ev["chance"], ev.get("control_full")
    if result.get("random_weights"):
        out.append("Random weights: this model was not loaded with trained weights, so the "
                   "report says nothing about a trained model (pass --checkpoint with your "
                   "weights file, or 'pretrained').")
    if _near_chance(ev):
        out.append(f"The full-width model is near chance: it scores {fmt(**full)} against "
                   f"{chance:.3g} for guessing among {ev['n_classes']} classes. Its features "
                   "barely separate these classes, so how much of that score a slimmed model "
                   "keeps says little.")
    if _not_above_control(ev):
        out.append(f"The full-width model ({fmt(**full)}) is not clearly above its random-init "
                   f"control ({fmt(**ctrl)}; the intervals overlap): on these images the "
                   "architecture and the probe give about as much as the learned weights, so "
                   "the retention curve is mostly the architecture's, not the model's.")
    chosen, keep = result["recommended_width"], result["keep"]
    test_ret = result["recommended_test_retention"]
    if chosen < 1.0 and test_ret < keep:
        r = ev["widths"][chosen]["model_retention"]
        inside = math.isfinite(r["hi"]) and r["hi"] >= keep
        out.append(f"At the recommended width s = {chosen:g} the held-out test retention is "
                   f"{fmt(**r)}, below the {keep:.0%} target that cross-validation on the "
                   "training images found met"
                   + (" (the interval still reaches the target: it may be test-set noise)."
                      if inside else "; the test images do not support the recommendation: "
                      "consider a larger width."))
    return out


def notes(result: dict[str, Any], ev: dict[str, Any]) -> list[str]:
    """One-line explanations a reader needs: retention above 1, latency that does not fall."""
    out = []
    above = [w for w, e in ev["widths"].items() if e["model_retention"]["value"] > 1.0]
    if above:
        out.append(f"Retention above 1 (at s = {', '.join(f'{w:g}' for w in above)}): a slimmed "
                   "model can score higher than the full model on a finite test set; when the "
                   "interval includes 1 the difference is noise.")
    rows = [r for r in result["rows"] if r.get("latency_ms")]
    if len(rows) >= 2:
        full = next(r for r in rows if r["width"] == 1.0)
        small = min(rows, key=lambda r: r["width"])
        ratio = small["latency_ms"] / full["latency_ms"]
        if ratio > OVERHEAD_RATIO:
            out.append(f"Latency at batch 1 hardly falls with width ({small['latency_ms']:.2g} ms "
                       f"at s = {small['width']:g} vs {full['latency_ms']:.2g} ms at s = 1, "
                       f"{ratio:.2f}×): fixed per-call overhead (Python, kernel launches, the "
                       "patch embedding) dominates a model this small; throughput at larger "
                       "batches shows more of the FLOP saving.")
    return out


def answer(result: dict[str, Any], ev: dict[str, Any]) -> str:
    """The one sentence a practitioner can act on."""
    chosen, keep = result["recommended_width"], result["keep"]
    rows = {r["width"]: r for r in result["rows"]}
    if chosen >= 1.0:
        widest = max(w for w in rows if w < 1.0)
        r = ev["widths"][widest]["model_retention"]
        return (f"Do not slim: no smaller width keeps {keep:.0%} of the full-width score in "
                f"cross-validation on your training images (the widest tried, s = {widest:g}, "
                f"keeps {fmt(**r)} on your test images).")
    row, r = rows[chosen], ev["widths"][chosen]["model_retention"]
    caveat = "Unreliable (see the warnings): " if ev.get("unreliable") else ""
    compute = row["rel_compute"]
    aligned = result.get("aligned") if result.get("recommended_align") else None
    how = f"s = {chosen:g}"
    if aligned:  # the aligned model's own compute, retention and (same-round) speed
        compute, r = aligned["rel_compute"], aligned["test_retention"]
        how += (f" with dims aligned to multiples of {aligned['align']} "
                f"(slimlib.slim(model, {chosen:g}, align={aligned['align']}))")
    pct = f"{compute:.0%}" if compute >= 0.1 else f"{compute:.1%}"
    text = (f"{caveat}Slim to {how}: {pct} of the compute, "
            f"{fmt(**r)} of the full-width accuracy on your test images")
    full = rows[1.0]
    if row.get("throughput_img_s") and full.get("throughput_img_s"):
        speed = row["throughput_img_s"] / full["throughput_img_s"]
        if aligned:
            speed *= aligned["speedup"]["median"]
        shown = f"{speed:.0f}" if speed >= 10 else f"{speed:.2g}"
        text += (f", {'about ' if aligned else ''}{shown}× the full model's throughput here "
                 f"(batch {row['batch']})")
    return text + "."


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What the CLI prints: the answer, the warnings, and the key numbers rounded to what
    their intervals support."""
    ev = result.get("evidence") or {}
    ctrl = result.get("control_score")
    score = (f"slimmability score {result['score']:.2f}"
             + (f" (control {ctrl:.2f})" if ctrl is not None else ""))
    if not ev:
        return [score + f"; smallest width keeping {result['keep']:.0%}: "
                f"{result['recommended_width']:g}"]
    lines = [answer(result, ev)]
    lines += [f"WARNING: {w}" for w in ev["warnings"]]
    full = f"full-width score {fmt(**ev['full'])}"
    if ev.get("control_full") is not None:
        full += f", random-init control {fmt(**ev['control_full'])}"
    lines.append(f"{full}, chance {ev['chance']:.3g}; {score}")
    al = result.get("aligned")
    if al and not al["same_model"]:
        verdict = "recommended" if al["recommended"] else "not recommended"
        lines.append(f"align={al['align']}: {verdict}: {al['why']}")
    if result.get("compare_model"):
        gap = ev["widths"][1.0].get("compare_minus_model")
        lines.append(f"compared checkpoint ({result['compare_weights']}): full-width score "
                     f"minus the model's {fmt(**gap) if gap else '–'}; smallest width keeping "
                     f"{result['keep']:.0%}: {result['compare_recommended_width']:g} (model: "
                     f"{result['recommended_width']:g})")
    return lines
