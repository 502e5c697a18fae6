"""The analyses of chapter 10 (robustness), one function per section, each returning its
tables and its verdict row(s), so the page only draws and prints: the settings, then class
imbalance, class-wise scores, implicit order, geographic shift, fine-tuning and training
dynamics; :func:`verdict_table` runs every section and returns their verdict rows only (what
chapter 1's claims table shows).

Settings per profile are in :data:`SETTINGS` (what a seed changes is documented in
``docs/robustness.md``). Verdict rows have the columns of :data:`VERDICT_COLUMNS`: the
paper's value (the range over its models, computed from the packaged reference data), this
build's statistic and its interval, and :func:`slimlib.book.robustness.analyses.verdict`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from slimlib.book.claims import rules as er
from slimlib.book.profiles import settings_of
from slimlib.book.robustness import analyses as rb
from slimlib.book.robustness.paper import paper_band as _paper_band
from slimlib.book.robustness.paper import paper_effect
from slimlib.book.robustness.paper import paper_retention as _paper_retention
from slimlib.sweeping.controls import control_label

__all__ = ["RobustnessSettings", "SETTINGS", "settings", "VERDICT_COLUMNS", "RANDOM_WEIGHTS",
           "rgb_dataset", "paper_effect",
           "imbalance", "classwise", "implicit_order", "geographic", "finetuning", "dynamics",
           "sections", "verdict_rows", "verdict_table"]

VERDICT_COLUMNS = ["analysis", "statistic", "paper", "this build", "interval", "random init",
                   "verdict", "why", "indication"]
#: Why every comparison of a random-weights profile is "not testable".
RANDOM_WEIGHTS = "random weights (smoke profile)"


@dataclass(frozen=True)
class RobustnessSettings:
    """What chapter 10 runs in one profile.

    Attributes:
        model: RGB-capable RS encoder for imbalance, class-wise and order (registry name).
        geo_model: 13-band encoder for the geographic split (EuroSAT MS).
        finetune_model: small encoder fine-tuned end to end.
        dynamics_models: embedded models whose pretraining snapshots are slimmed.
        widths: widths of every analysis (the rebuttal's five in the paper profile).
        ratios: imbalance ratios (class 9 keeps this fraction; 1 = balanced).
        seeds: subsampling / split / fine-tuning seeds.
        draws: random-order draws (the paper: 20); ``order_widths``: where they are drawn.
        block_deg: geographic block size in degrees; ``finetune_epochs``, ``finetune_widths``,
        ``finetune_seeds``: the fine-tuning budget; ``small_threads``: torch threads while an
        embedded tiny model runs (one thread is faster for its small tensors, several times
        so on a loaded machine; ``None``: leave as is); ``n_boot``: bootstrap resamples.
    """

    model: str
    geo_model: str
    finetune_model: str
    dynamics_models: tuple[str, ...]
    widths: tuple[float, ...] = (0.001, 0.01, 0.1, 0.5, 1.0)
    ratios: tuple[float, ...] = (0.01, 0.1, 0.2, 0.5, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    draws: int = 20
    order_widths: tuple[float, ...] = (0.1, 0.5)
    block_deg: float = 2.0
    finetune_widths: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0)
    finetune_seeds: tuple[int, ...] = (0, 1, 2)
    finetune_epochs: int = 10
    small_threads: int | None = 1
    n_boot: int = 200


_TINY = ("rs-moco-tiny", "rs-moco-tiny-slimmable", "rs-mae-tiny", "rs-mae-tiny-slimmable")
SETTINGS: dict[str, RobustnessSettings] = {
    "smoke": RobustnessSettings(
        model="rs-moco-tiny", geo_model="rs-moco-tiny", finetune_model="rs-moco-tiny",
        dynamics_models=("rs-moco-tiny",), widths=(0.1, 1.0), ratios=(0.1, 1.0), seeds=(0, 1),
        draws=3, order_widths=(0.1,), finetune_widths=(0.1, 1.0), finetune_seeds=(0,),
        finetune_epochs=1, n_boot=50),
    "default": RobustnessSettings(
        model="galileo-nano-rgb", geo_model="galileo-nano", finetune_model="rs-moco-tiny",
        dynamics_models=_TINY, draws=20, order_widths=(0.1,), finetune_seeds=(0, 1),
        finetune_epochs=8),
    "paper": RobustnessSettings(
        model="dofa-base", geo_model="dofa-base", finetune_model="ssl4eo-vits16-moco",
        dynamics_models=_TINY, order_widths=(0.01, 0.1, 0.5), small_threads=None,
        finetune_widths=(0.001, 0.01, 0.1, 0.5, 1.0), finetune_epochs=20, n_boot=1000),
}


def settings(profile: Any, **overrides: Any) -> RobustnessSettings:
    """The profile's :class:`RobustnessSettings` with every override that is not ``None``."""
    base = SETTINGS.get(profile.name, SETTINGS["default"])
    fields = {f.name for f in dataclasses.fields(RobustnessSettings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown robustness setting(s) {unknown}; allowed: {sorted(fields)}")
    changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()
               if v is not None}
    return dataclasses.replace(base, **changes)


# ------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block (``None``: unchanged), then restore."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _threads_for(st: RobustnessSettings, name: str) -> int | None:
    """``st.small_threads`` for an embedded tiny model, ``None`` (unchanged) otherwise."""
    from slimlib import models as registry

    return st.small_threads if registry.spec(name).family == "embedded" else None


def _load(profile: Any, name: str, *, init_seed: int | None = None) -> Any:
    """``name`` under ``profile`` (options: :func:`slimlib.book.runs.load_options`), or its
    random-init control drawn from ``init_seed``."""
    from slimlib import models as registry
    from slimlib.book.runs import load_options
    from slimlib.sweeping import controls

    options = load_options(profile, name)
    if init_seed is not None:
        return controls.random_init(name, init_seed, **options)
    return registry.load(name, pretrained=profile.pretrained, **options)


def _pair(profile: Any, dataset: str) -> tuple[Any, Any]:
    from slimlib.book.profiles import load_datasets

    return next(iter(load_datasets(profile, [dataset]).values()))


def rgb_dataset(profile: Any) -> str:
    """EuroSAT RGB when the profile has it, else its first dataset (synthetic fallback)."""
    return "eurosat-rgb" if "eurosat-rgb" in profile.datasets else profile.datasets[0]


def _example(model: Any, data: Any) -> Any:
    from slimlib import features

    return features.prepare_dataset(data, model.spec)[:1]


def _row(analysis: str, statistic: str, paper: tuple[float, float] | None, value: float,
         lo: float, hi: float, why: str, *, profile: Any, models: Any, datasets: Any,
         kind: str = er.RS_FM, max_width: float | None = 0.2, mode: str = er.MEETS,
         untestable: str | None = None, control: tuple[str, bool] | None = None,
         indicate: bool = True) -> dict[str, Any]:
    """One verdict row, judged by the book's one policy (:func:`slimlib.book.robustness.analyses.judge`).

    ``paper``: the paper's range over its models at the same width (``None``: the paper has
    no number to compare with, ``untestable`` says why); ``control``:
    :func:`slimlib.book.robustness.analyses.control_reading` of the random-init network's effect (its
    text goes in column ``random init``; where it shows the same effect, the reason says so).
    ``untestable``: a reason the section knows; the number is then only an indication
    (none where ``indicate`` is False, e.g. a retention of a chance-level class).
    """
    shown = math.isfinite(value)
    number = (f"{value:+.3f} [{lo:+.3f}, {hi:+.3f}]" if math.isfinite(lo) and math.isfinite(hi)
              else f"{value:+.3f}") if shown else ""
    if paper is None or untestable is not None:
        # a reason the section knows (no data, chance-level class, random weights, ...)
        ruling = er.Ruling(rb.NOT_TESTABLE, untestable or why,
                           f"indication only: {number}" if shown and indicate else "")
    else:
        ruling = rb.judge(value, lo, hi, paper, models=models, datasets=datasets,
                          pretrained=bool(getattr(profile, "pretrained", True)), kind=kind,
                          max_width=max_width, mode=mode, detail=why)
    reason = ruling.why
    text, same = control if control is not None else ("—", False)
    if same and untestable is None:
        reason = f"{reason}; {rb.SAME_AS_RANDOM}"
    return {"analysis": analysis, "statistic": statistic,
            "paper": "—" if paper is None else f"{min(paper):+.3f} … {max(paper):+.3f}"
            if mode == er.MEETS else f"≤ {max(paper):.3f}",
            "this build": f"{value:+.3f}" if shown else "—",
            "interval": f"[{lo:+.3f}, {hi:+.3f}]" if math.isfinite(lo) and math.isfinite(hi)
            else "—",
            "random init": text, "verdict": ruling.verdict, "why": reason,
            "indication": ruling.indication}


def _model_threads(attr: str) -> Any:
    """Run the decorated analysis under :func:`_threads_for` of the model ``st.<attr>``."""
    import functools

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(profile: Any, st: RobustnessSettings) -> Any:
            with _threads(_threads_for(st, getattr(st, attr))):
                return fn(profile, st)
        return inner
    return wrap


# ------------------------------------------------------------------------------ imbalance
@_model_threads("model")
def imbalance(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """Exponential class imbalance of the k-NN bank (EuroSAT RGB), pretrained and random init.

    Returns ``{"table", "verdict", "paper"}``: ``table`` has ``model, ratio, width,
    rel_compute, mean, sd, retention, ret_lo, ret_hi`` (seed mean, ± 2 SD over seeds).
    """
    dataset = rgb_dataset(profile)
    train, test = _pair(profile, dataset)
    y_tr, y_te = train.labels.numpy(), test.labels.numpy()
    rows, preds = [], {}
    for label, init in ((st.model, None), (control_label(st.model, 0), 0)):
        model = _load(profile, st.model, init_seed=init)
        feats = rb.width_features(model, {"train": train, "test": test}, st.widths,
                                  name=label, batch_size=profile.batch_size,
                                  device=profile.device,
        settings=settings_of(profile))
        rc = rb.relative_compute_of(model, st.widths, _example(model, test))
        preds[label] = rb.imbalance_predictions(feats, y_tr, ratios=st.ratios, seeds=st.seeds)
        for ratio in st.ratios:
            full = np.array([rb.macro_accuracy(y_te, preds[label][(ratio, s, 1.0)])
                             for s in st.seeds])
            for w in sorted(feats):
                acc = np.array([rb.macro_accuracy(y_te, preds[label][(ratio, s, w)])
                                for s in st.seeds])
                ret = acc / full
                sd = ret.std(ddof=1) if ret.size > 1 else math.nan
                rows.append({"model": label, "ratio": ratio, "width": w, "rel_compute": rc[w],
                             "mean": acc.mean(), "sd": acc.std(ddof=1) if acc.size > 1
                             else math.nan, "retention": ret.mean(),
                             "ret_lo": ret.mean() - 2 * sd, "ret_hi": ret.mean() + 2 * sd})
    table = pd.DataFrame(rows)
    lo_r, hi_r, w0 = min(st.ratios), max(st.ratios), min(st.widths)
    control = control_label(st.model, 0)

    def delta(p: dict, idx: np.ndarray) -> float:
        y = y_te[idx]
        ret = [[rb.macro_accuracy(y, p[(r, s, w0)][idx])
                / rb.macro_accuracy(y, p[(r, s, 1.0)][idx]) for s in st.seeds]
               for r in (lo_r, hi_r)]
        return float(np.mean(ret[0]) - np.mean(ret[1]))

    def stat(idx: np.ndarray) -> list[float]:
        ours, rand = delta(preds[st.model], idx), delta(preds[control], idx)
        return [ours, rand, ours - rand]

    (value, lo, hi), ctrl, diff = rb.paired_bootstrap(stat, len(y_te), n_boot=st.n_boot)
    ref = _paper_retention("imbalance", "imbalance_ratio")
    effect, no_ratio = paper_effect("imbalance", ratio=lo_r)
    band, no_band = _paper_band(effect, w0, what="imbalance retention") if not effect.empty \
        else (None, no_ratio)
    statistic = (f"retention at s = {w0:g} with ratio {lo_r:g} minus balanced "
                 f"({st.model} on {dataset}; paper: m-eurosat)")
    ok = lo_r < 1 and hi_r == 1.0
    untestable = no_band
    if untestable is None and not ok:
        untestable = "needs ratio 1 and one < 1"
    if untestable is None and not profile.pretrained:
        untestable = RANDOM_WEIGHTS
    verdict = _row("class imbalance", statistic, band, value, lo, hi,
                   f"paired bootstrap over {len(y_te)} test images, {len(st.seeds)} "
                   "subsampling seeds; paper: range over its 3 models at the same width",
                   profile=profile, models=st.model, datasets=dataset,
                   untestable=untestable, control=rb.control_reading(ctrl, diff))
    return {"table": table, "verdict": verdict, "paper": ref}


# ------------------------------------------------------------------------------ class-wise
@_model_threads("model")
def classwise(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """Per-class recall and one-vs-rest AP under slimming on EuroSAT RGB and UC Merced.

    Returns ``{"table", "extremes", "verdict"}``: ``table`` has ``dataset, width, class,
    recall, ap, ap_lo, ap_hi`` (bootstrap 95 % interval over test images), and the control
    ``random_ap`` (the same class's AP from the random-init network of the same architecture,
    init seed 0, at the same width) and ``prevalence`` (the AP of a constant score).
    """
    names = [d for d in ("eurosat-rgb", "ucmerced") if d in profile.datasets] \
        or [profile.datasets[0]]
    model = _load(profile, st.model)
    control = _load(profile, st.model, init_seed=0)
    rows, extremes, deltas = [], [], []
    for dataset in names:
        train, test = _pair(profile, dataset)
        splits = {"train": train, "test": test}
        common = dict(batch_size=profile.batch_size, device=profile.device,
                      settings=settings_of(profile))
        feats = rb.width_features(model, splits, st.widths, name=st.model, **common)
        rfeats = rb.width_features(control, splits, st.widths,
                                   name=control_label(st.model, 0), **common)
        y_tr, y_te = train.labels.numpy(), test.labels.numpy()
        k = len(test.classes)
        scores = {w: rb.knn_class_scores(f["train"], y_tr, f["test"], n_classes=k)
                  for w, f in feats.items()}
        rscores = {w: rb.knn_class_scores(f["train"], y_tr, f["test"], n_classes=k)
                   for w, f in rfeats.items()}
        for w, sc in scores.items():
            per = rb.classwise_scores(feats[w]["train"], y_tr, feats[w]["test"], y_te,
                                      classes=test.classes)
            rand = rb.classwise_scores(rfeats[w]["train"], y_tr, rfeats[w]["test"], y_te,
                                       classes=test.classes)
            for c, row in per.iterrows():  # the index is the class id
                _, lo, hi = rb.bootstrap(
                    lambda idx, c=c, sc=sc, y=y_te: rb.average_precision(y[idx] == c,
                                                                         sc[idx, c]),
                    len(y_te), n_boot=st.n_boot)
                rows.append({"dataset": test.display_name, "width": w, **row.to_dict(),
                             "ap_lo": lo, "ap_hi": hi, "random_ap": float(rand.loc[c, "ap"]),
                             "prevalence": float((y_te == c).mean())})
        part = pd.DataFrame([r for r in rows if r["dataset"] == test.display_name])
        mean_ap = part.groupby("class")["ap"].mean()
        hardest, easiest = mean_ap.idxmin(), mean_ap.idxmax()
        w0 = min(scores)
        ci = {c: test.classes.index(c) for c in (hardest, easiest)}

        def stat(idx: np.ndarray, ci: dict = ci, y: np.ndarray = y_te, s: dict = scores,
                 r: dict = rscores, w0: float = w0, h: str = hardest, e: str = easiest
                 ) -> list[float]:
            def ret(by_width: dict, cls: str) -> float:
                j = ci[cls]
                return rb.average_precision(y[idx] == j, by_width[w0][idx, j]) / \
                    rb.average_precision(y[idx] == j, by_width[1.0][idx, j])
            ours, rand = ret(s, h) - ret(s, e), ret(r, h) - ret(r, e)
            return [ours, rand, ours - rand]

        (value, lo, hi), ctrl, diff = rb.paired_bootstrap(stat, len(y_te), n_boot=st.n_boot)
        chance = float((y_te == ci[hardest]).mean())
        hard_full = float(part[(part["class"] == hardest) & np.isclose(part["width"], 1.0)
                               ]["ap"].iloc[0])
        problem = (f"this build's hardest class ({hardest}) is at chance level at full width "
                   f"(AP {hard_full:.3f}, prevalence {chance:.3f}, "
                   f"{int((y_te == ci[hardest]).sum())} test images; rule: AP < "
                   f"{rb.CHANCE_AP_MIN:g} or ≤ {rb.CHANCE_AP_FACTOR:g} × prevalence): a "
                   "retention of chance says nothing"
                   if rb.at_chance(hard_full, chance) else None)
        deltas.append((test.display_name, value, lo, hi, problem, w0,
                       rb.control_reading(ctrl, diff)))
        for rank, c in (("hardest", hardest), ("easiest", easiest)):
            sel = part[part["class"] == c].sort_values("width")
            extremes.append({"dataset": test.display_name, "rank": rank, "class": c,
                             **{f"s={w:g}": a for w, a in zip(sel["width"], sel["ap"],
                                                              strict=True)}})
    ref = _paper_retention("classwise", "class_rank")
    # the same chance-level rule on the paper's side (paper_effect leaves out a model whose
    # hardest class is at chance at full width)
    effect, left_out = paper_effect("classwise")
    note = f"; {left_out}" if left_out else ""
    dropped = effect.attrs["left_out"]
    rows_v = []
    for d, v, lo, hi, problem, w0, ctrl in deltas:
        band, no_band = _paper_band(effect, w0, what="class-wise AP") if not effect.empty \
            else (None, "every paper model's hardest class is at chance level")
        rows_v.append(_row(
            "class-wise AP", f"AP retention at s = {w0:g}, hardest minus easiest class "
            f"({st.model} on {d})", band, v, lo, hi,
            "paired bootstrap over test images; paper: m-bigearthnet, range over its models "
            f"at the same width (a different dataset){note}", max_width=0.5,
            profile=profile, models=st.model, datasets=d,
            untestable=problem or no_band or (None if profile.pretrained else RANDOM_WEIGHTS),
            control=ctrl, indicate=problem is None))
    return {"table": pd.DataFrame(rows), "extremes": pd.DataFrame(extremes),
            "verdicts": rows_v, "paper": ref, "paper_left_out": dropped}


# ------------------------------------------------------------------------------ order
@_model_threads("model")
def implicit_order(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """First-dimension slimming vs ``st.draws`` random index draws (k-NN, EuroSAT RGB).

    Returns ``{"table", "verdict"}``: ``table`` has ``width, first, random_mean,
    random_sd, band_lo, band_hi`` (mean ± 2σ over draws) and whether ``first`` is inside.
    """
    dataset = rgb_dataset(profile)
    train, test = _pair(profile, dataset)
    y_tr, y_te = train.labels.numpy(), test.labels.numpy()
    model = _load(profile, st.model)
    from slimlib.probes import knn_predict

    first = rb.width_features(model, {"train": train, "test": test}, st.order_widths,
                              name=st.model, batch_size=profile.batch_size,
                              device=profile.device,
        settings=settings_of(profile))
    rows, preds = [], {}
    for w in sorted(first):
        draws = rb.random_order_features(model, {"train": train, "test": test}, w,
                                         range(st.draws), name=st.model,
                                         batch_size=profile.batch_size, device=profile.device,
        settings=settings_of(profile))
        p_first = knn_predict(first[w]["train"], y_tr, first[w]["test"])
        p_rand = [knn_predict(f["train"], y_tr, f["test"]) for f in draws.values()]
        preds[w] = (p_first, p_rand)
        acc = np.array([rb.macro_accuracy(y_te, p) for p in p_rand])
        a_first = rb.macro_accuracy(y_te, p_first)
        sd = acc.std(ddof=1) if acc.size > 1 else math.nan
        rows.append({"width": w, "first": a_first, "random_mean": acc.mean(), "random_sd": sd,
                     "band_lo": acc.mean() - 2 * sd, "band_hi": acc.mean() + 2 * sd,
                     "first inside 2σ band": bool(abs(a_first - acc.mean()) <= 2 * sd),
                     "draws": len(acc)})
    table = pd.DataFrame(rows)
    worst = float(table.loc[(table["first"] - table["random_mean"]).abs().idxmax(), "width"])
    p_first, p_rand = preds[worst]

    def stat(idx: np.ndarray) -> float:
        y = y_te[idx]
        return abs(rb.macro_accuracy(y, p_first[idx])
                   - np.mean([rb.macro_accuracy(y, p[idx]) for p in p_rand]))

    value, lo, hi = rb.bootstrap(stat, len(y_te), n_boot=st.n_boot)
    verdict = _row("implicit order", f"|first − mean of {st.draws} random draws| at s = "
                   f"{worst:g} ({st.model} on {dataset})", (0.0, 0.028), value, lo, hi,
                   "bootstrap over test images; paper: at most 2.8 points (the whole "
                   "interval must lie below)", mode=er.WITHIN, profile=profile,
                   models=st.model, datasets=dataset,
                   untestable=None if profile.pretrained else RANDOM_WEIGHTS)
    return {"table": table, "verdict": verdict}


# ------------------------------------------------------------------------------ geography
@_model_threads("geo_model")
def geographic(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """Spatially disjoint vs random split of the EuroSAT MS tiles (pretrained and random
    init), k-NN. Returns ``{"table", "retention", "verdict", "locations"}``; without the
    georeferenced tiles the verdict is "not testable" and the tables are empty."""
    from slimlib import data as sdata
    from slimlib.book.robustness import geo

    statistic = (f"retention at s = {min(st.widths):g}, disjoint minus random split "
                 f"({st.geo_model} on eurosat-ms)")
    ref = _paper_retention("geo", "split")
    band, no_band = _paper_band(paper_effect("geo")[0], min(st.widths),
                                what="the geographic split")
    if "eurosat-ms" not in profile.datasets:
        return {"table": pd.DataFrame(), "retention": pd.DataFrame(), "locations": None,
                "paper": ref, "verdict": _row("geographic shift", statistic, band, math.nan,
                                              math.nan, math.nan, "", profile=profile,
                                              models=st.geo_model, datasets="eurosat-ms",
                                              untestable=(
                                                  "no georeferenced EuroSAT MS tiles (no data "
                                                  "root): this profile has "
                                                  f"{list(profile.datasets)}"))}
    everything = sdata.load("eurosat-ms", "all", root=profile.data_root,
                            settings=settings_of(profile))
    loc = geo.tile_locations(settings_of(profile).data).set_index("path").loc[
        list(everything.paths)]
    blocks = geo.spatial_blocks(loc["lon"], loc["lat"], block_deg=st.block_deg)
    y = everything.labels.numpy()
    parts = []
    for label, init in ((st.geo_model, None), (control_label(st.geo_model, 0), 0)):
        model = _load(profile, st.geo_model, init_seed=init)
        feats = rb.width_features(model, {"all": everything}, st.widths, name=label,
                                  batch_size=profile.batch_size, device=profile.device,
        settings=settings_of(profile))
        rc = rb.relative_compute_of(model, st.widths, _example(model, everything))
        scores = geo.split_scores({w: f["all"] for w, f in feats.items()}, y, blocks,
                                  seeds=st.seeds)
        parts.append(scores.assign(model=label, rel_compute=scores["width"].map(rc)))
    table = pd.concat(parts, ignore_index=True)
    full = table[np.isclose(table["width"], 1.0)].set_index(["model", "split", "seed"])["value"]
    table["retention"] = table["value"] / table.set_index(["model", "split", "seed"]
                                                          ).index.map(full).to_numpy()
    ret = table.groupby(["model", "split", "width"]).agg(
        rel_compute=("rel_compute", "mean"), mean=("value", "mean"),
        retention=("retention", "mean"), ret_sd=("retention", "std"),
        n_test=("n_test", "mean")).reset_index()
    ret["ret_lo"] = ret["retention"] - 2 * ret["ret_sd"]
    ret["ret_hi"] = ret["retention"] + 2 * ret["ret_sd"]
    w0 = min(st.widths)

    def effect(label: str) -> pd.Series:
        at = table[(table["model"] == label) & np.isclose(table["width"], w0)]
        d = at.pivot_table(index="seed", columns="split", values="retention")
        return d["disjoint"] - d["random"]

    def mean_2se(x: np.ndarray) -> tuple[float, float, float]:
        se = x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else math.nan
        return float(x.mean()), float(x.mean() - 2 * se), float(x.mean() + 2 * se)

    ours, rand = effect(st.geo_model), effect(control_label(st.geo_model, 0))
    value, lo, hi = mean_2se(ours.to_numpy())
    # the control runs on the same splits (same seeds): paired by seed
    paired = (ours - rand.reindex(ours.index)).to_numpy()
    n_test = int(table.loc[(table["model"] == st.geo_model) & np.isclose(table["width"], w0),
                           "n_test"].mean())
    verdict = _row("geographic shift", statistic, band, value, lo, hi,
                   f"mean ± 2 SE over {ours.size} split seeds ({st.block_deg:g}° blocks, "
                   f"{n_test} test tiles); paper: m-so2sat Cultural-10 vs random, range over "
                   "its 3 models at the same width", profile=profile, models=st.geo_model,
                   datasets="eurosat-ms",
                   untestable=no_band or (None if profile.pretrained else RANDOM_WEIGHTS),
                   control=rb.control_reading(mean_2se(rand.to_numpy()), mean_2se(paired)))
    return {"table": table, "retention": ret, "verdict": verdict, "paper": ref,
            "locations": loc.assign(block=blocks)}


# ------------------------------------------------------------------------------ fine-tuning
def finetuning(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """Fine-tuned vs frozen (linear, k-NN) accuracy of the slimmed ``st.finetune_model`` on
    EuroSAT RGB. Returns ``{"table", "summary", "verdict", "works"}``."""
    from slimlib.book.robustness.finetune import FinetuneRecipe, finetune_table, recipe_works

    dataset = rgb_dataset(profile)
    train, test = _pair(profile, dataset)
    model = _load(profile, st.finetune_model)
    recipe = FinetuneRecipe(epochs=st.finetune_epochs)
    from slimlib.book.profiles import results_path

    with _threads(_threads_for(st, st.finetune_model)):
        table = finetune_table(model, train, test, widths=st.finetune_widths,
                               seeds=st.finetune_seeds, recipe=recipe,
                               batch_size=profile.batch_size, device=profile.device,
                               settings=settings_of(profile),
                               cache_dir=results_path("robustness/x", profile).parent)
    rc = rb.relative_compute_of(model, st.finetune_widths, _example(model, test))
    table["rel_compute"] = table["width"].map(rc)
    summary = table.groupby(["protocol", "width"]).agg(
        rel_compute=("rel_compute", "mean"), mean=("value", "mean"),
        sd=("value", "std")).reset_index()
    full = summary[np.isclose(summary["width"], 1.0)].set_index("protocol")["mean"]
    summary["retention"] = summary["mean"] / summary["protocol"].map(full)
    works, why = recipe_works(table)
    preds, y = table.attrs["predictions"], table.attrs["labels"]
    w0 = min(st.finetune_widths)

    def stat(idx: np.ndarray) -> float:
        def ret(p: str) -> float:
            return float(np.mean([rb.macro_accuracy(y[idx], preds[(p, w0, s)][idx])
                                  / rb.macro_accuracy(y[idx], preds[(p, 1.0, s)][idx])
                                  for s in st.finetune_seeds]))
        return ret("finetune") - ret("linear")

    value, lo, hi = rb.bootstrap(stat, len(y), n_boot=st.n_boot)
    ref = rb.paper_rebuttal("finetune")
    ref = ref[ref["dataset"] == "m-eurosat"]
    band, no_band = _paper_band(paper_effect("finetune")[0], w0,   # at OUR smallest width
                                what="fine-tuning")
    reason = no_band or (None if works and profile.pretrained else (
        why if not works else RANDOM_WEIGHTS))
    verdict = _row("fine-tuning", f"retention at s = {w0:g}, fine-tuned minus linear probe "
                   f"({st.finetune_model} on {dataset})", band,
                   value, lo, hi, f"paired bootstrap over test images, "
                   f"{len(st.finetune_seeds)} seeds; {why}; paper: m-eurosat, range over its 3 "
                   "models at the same width", profile=profile, models=st.finetune_model,
                   datasets=dataset, untestable=reason)
    return {"table": table, "summary": summary, "verdict": verdict, "works": works,
            "paper": ref}


# ------------------------------------------------------------------------------ dynamics
def dynamics(profile: Any, st: RobustnessSettings) -> dict[str, Any]:
    """Slimmed snapshots of each model's pretraining (k-NN on EuroSAT RGB). Returns
    ``{"rows", "spread", "verdicts", "references"}``: regular-training runs are no claim of
    the paper; their gap change is in ``references`` (the baseline the slimmable MoCo verdict
    is read against), not among the verdicts."""
    from slimlib.book.robustness import dynamics as dyn

    dataset = rgb_dataset(profile)
    with _threads(st.small_threads):
        rows = dyn.dynamics_rows(profile, st.dynamics_models, dataset, widths=st.widths)
    spread = dyn.width_spread(rows)
    train, test = _pair(profile, dataset)
    measured: dict[str, tuple[str, float, float, float]] = {}
    missing: dict[str, str] = {}
    for name in st.dynamics_models:
        change, _ = dyn.spread_change(spread, name)
        statistic = (f"{name}: change of accuracy gap full − s = {min(st.widths):g} from the "
                     "first to the last trained snapshot")
        if not math.isfinite(change):
            missing[name] = statistic
            continue
        steps = sorted(s for s in spread.loc[spread["base"] == name, "step"] if s > 0)
        with _threads(st.small_threads):
            encoders = dyn.snapshot_encoders(name, pretrained=profile.pretrained,
                                             settings=settings_of(profile))
            change, lo, hi = dyn.gap_change_bootstrap(
                name, encoders[steps[0]], encoders[steps[-1]], (steps[0], steps[-1]), train,
                test, smallest=min(st.widths), n_boot=st.n_boot, batch_size=profile.batch_size,
                device=profile.device, settings=settings_of(profile))
        measured[name] = (statistic + f" (steps {steps[0]} → {steps[-1]}, full k-NN bank)",
                          change, lo, hi)
    verdicts, references = [], []
    for name in st.dynamics_models:
        if name in missing:
            verdicts.append(_row("training dynamics", missing[name], None, math.nan, math.nan,
                                 math.nan, "", profile=profile, models=name, datasets=dataset,
                                 kind=er.PAIR, untestable="fewer than two trained snapshots "
                                 "(the smoke profile does not pretrain)"))
            continue
        statistic, change, lo, hi = measured[name]
        slimmable = name.endswith("-slimmable")
        regular = name.removesuffix("-slimmable")
        if slimmable and "moco" in name:
            # the paper's figure (no numbers): the widths' accuracies equalise, gap shrinks;
            # read against the regular run of the same recipe (does its gap shrink too?)
            control = None
            if regular in measured:
                _, r_change, r_lo, r_hi = measured[regular]
                control = (f"regular training ({regular}): {r_change:+.3f} "
                           f"[{r_lo:+.3f}, {r_hi:+.3f}]",
                           bool(r_hi < 0 and hi < 0))
            row = _row("training dynamics", statistic, (-math.inf, 0.0), change, lo, hi,
                       "paired 95 % bootstrap over the test images; the paper gives this as a "
                       "figure only", profile=profile, models=name, datasets=dataset,
                       kind=er.PAIR, mode=er.WITHIN, max_width=None,
                       untestable=None if profile.pretrained else RANDOM_WEIGHTS)
            row["paper"] = "gap shrinks (< 0; figure only)"
            if control is not None:
                row["random init"] = control[0]
                if control[1]:
                    row["why"] += ("; the regular run's gap shrinks as well: the shrinking is "
                                   "not specific to slimmable training")
            verdicts.append(row)
        elif slimmable:
            row = _row("training dynamics", statistic, None, change, lo, hi, "",
                       profile=profile, models=name, datasets=dataset, kind=er.PAIR,
                       untestable="the tiny MAE trains "
                       f"{max(spread[spread['base'] == name]['step'])} steps (a few epochs), "
                       "far short of the 200 epochs where the paper's drop starts")
            row["paper"] = "improves for 200 epochs, then drops ~20 %"
            row["interval"] = f"[{lo:+.3f}, {hi:+.3f}]"
            verdicts.append(row)
        else:
            references.append({"model": name, "statistic": statistic, "change": change,
                               "lo": lo, "hi": hi,
                               "role": "regular training: the baseline the slimmable run is "
                               "read against"})
    return {"rows": rows, "spread": spread, "verdicts": verdicts,
            "references": pd.DataFrame(references)}


# ------------------------------------------------------------------------------ all verdicts
def sections() -> tuple[tuple[str, Callable[[Any, RobustnessSettings], dict[str, Any]]], ...]:
    """Chapter 10's sections in page order, ``(name, function)``; every function takes the
    resolved profile and the settings and returns a dict with ``"verdict"`` (one row) or
    ``"verdicts"`` (a list of rows)."""
    return (("class imbalance", imbalance), ("class-wise", classwise),
            ("implicit order", implicit_order), ("geographic shift", geographic),
            ("fine-tuning", finetuning), ("training dynamics", dynamics))


def verdict_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict row(s) of one section's result, each with the :data:`VERDICT_COLUMNS`.

    (Each section makes its own verdicts "not testable" in a random-weights profile, with
    :data:`~slimlib.book.robustness.chapter.RANDOM_WEIGHTS` or a more specific reason.)
    """
    if ("verdict" in result) == ("verdicts" in result):
        raise ValueError("a section result has exactly one of 'verdict' and 'verdicts'; got "
                         f"keys {sorted(result)}")
    rows = list(result["verdicts"]) if "verdicts" in result else [result["verdict"]]
    for row in rows:
        missing = [c for c in VERDICT_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"verdict row {row!r} lacks column(s) {missing}")
    return rows


def verdict_table(profile: Any, st: RobustnessSettings, *,
                  progress: bool = True) -> pd.DataFrame:
    """Every verdict row of chapter 10, in page order: the same section functions with the
    same settings as the chapter, so each row here is the row of its section there (the
    features and fine-tuning runs are cached, so the chapter then reads them back).

    Returns a frame with :data:`VERDICT_COLUMNS`; ``.attrs["seconds"]`` is
    ``{section name: wall seconds in this call}``.
    """
    from tqdm.auto import tqdm

    rows, seconds = [], {}
    bar = tqdm(sections(), desc="robustness verdicts", disable=not progress, leave=False)
    for name, function in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        result = function(profile, st)
        seconds[name] = time.perf_counter() - t0
        rows += verdict_rows(result)
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    table.attrs["seconds"] = seconds
    return table
