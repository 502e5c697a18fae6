"""The analyses of chapter 10 (robustness), one function per section, each returning its
tables and its verdict row(s), so the page only draws and prints. This module: settings,
class imbalance, class-wise scores and implicit order; :mod:`slimlib.robustness_sections`:
geographic shift, fine-tuning and training dynamics.

Settings per profile are in :data:`SETTINGS` (what a seed changes is documented in
``docs/robustness.md``). Verdict rows have the columns of :data:`VERDICT_COLUMNS`: the
paper's value (the range over its models, computed from the packaged reference data), this
build's statistic and its interval, and :func:`slimlib.robustness.verdict`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from slimlib import robustness as rb
from slimlib.controls import control_label
from slimlib.profiles import settings_of

__all__ = ["RobustnessSettings", "SETTINGS", "settings", "VERDICT_COLUMNS", "RANDOM_WEIGHTS",
           "rgb_dataset",
           "imbalance", "classwise", "implicit_order"]

VERDICT_COLUMNS = ["analysis", "statistic", "paper", "this build", "interval", "verdict", "why"]
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
    from slimlib import controls
    from slimlib import models as registry

    options = {**profile.options_for(name), "settings": settings_of(profile)}
    if init_seed is not None:
        return next(iter(controls.random_init_models(name, (init_seed,), **options).values()))
    if getattr(profile, "data_root", None) is not None and registry.spec(name).family == "embedded":
        options["data_root"] = profile.data_root
    return registry.load(name, pretrained=profile.pretrained, **options)


def _pair(profile: Any, dataset: str) -> tuple[Any, Any]:
    from slimlib.profiles import load_datasets

    return next(iter(load_datasets(profile, [dataset]).values()))


def rgb_dataset(profile: Any) -> str:
    """EuroSAT RGB when the profile has it, else its first dataset (synthetic fallback)."""
    return "eurosat-rgb" if "eurosat-rgb" in profile.datasets else profile.datasets[0]


def _example(model: Any, data: Any) -> Any:
    from slimlib import features

    return features.prepare_dataset(data, model.spec)[:1]


def _row(analysis: str, statistic: str, paper: tuple[float, float] | None, value: float,
         lo: float, hi: float, why: str, *, max_width: float = 0.2,
         untestable: str | None = None) -> dict[str, Any]:
    if untestable is not None or paper is None:
        return {"analysis": analysis, "statistic": statistic,
                "paper": "—" if paper is None else f"{paper[0]:+.3f} … {paper[1]:+.3f}",
                "this build": "—" if not math.isfinite(value) else f"{value:+.3f}",
                "interval": "—", "verdict": rb.NOT_TESTABLE,
                "why": untestable or why}
    return {"analysis": analysis, "statistic": statistic,
            "paper": f"{paper[0]:+.3f} … {paper[1]:+.3f}", "this build": f"{value:+.3f}",
            "interval": f"[{lo:+.3f}, {hi:+.3f}]",
            "verdict": rb.verdict(lo, hi, *paper, max_width=max_width), "why": why}


def _paper_retention(section: str, key: str, col: str = "y") -> pd.DataFrame:
    """Paper rows of a rebuttal section with ``key`` parsed from ``extra`` and retention
    y / y(s = 1) per series and key value."""
    ref = rb.paper_rebuttal(section)
    ref[key] = ref["extra"].str.extract(rf"{key}=([^;]+)")[0]
    full = ref[np.isclose(ref["s"], 1.0)].set_index(["series", key])[col]
    ref["retention"] = ref[col] / ref.set_index(["series", key]).index.map(full).to_numpy()
    return ref


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

    def delta(label: str) -> Any:
        p = preds[label]

        def stat(idx: np.ndarray) -> float:
            y = y_te[idx]
            ret = [[rb.macro_accuracy(y, p[(r, s, w0)][idx])
                    / rb.macro_accuracy(y, p[(r, s, 1.0)][idx]) for s in st.seeds]
                   for r in (lo_r, hi_r)]
            return float(np.mean(ret[0]) - np.mean(ret[1]))
        return stat

    value, lo, hi = rb.bootstrap(delta(st.model), len(y_te), n_boot=st.n_boot)
    ref = _paper_retention("imbalance", "imbalance_ratio")
    small = ref[ref["s"] == ref["s"].min()]
    piv = small.pivot_table(index="series", columns="imbalance_ratio", values="retention")
    paper = piv[str(min(float(c) for c in piv.columns))] - piv["1.0"]
    statistic = (f"retention at s = {w0:g} with ratio {lo_r:g} minus balanced "
                 f"({st.model} on {dataset})")
    ok = lo_r < 1 and hi_r == 1.0
    verdict = _row("class imbalance", statistic, (float(paper.min()), float(paper.max())),
                   value, lo, hi, f"bootstrap over {len(y_te)} test images, {len(st.seeds)} "
                   "subsampling seeds; paper: range over its 3 models",
                   untestable=None if ok and profile.pretrained else
                   (RANDOM_WEIGHTS if ok else "needs ratio 1 and one < 1"))
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
                 w0: float = w0, h: str = hardest, e: str = easiest) -> float:
            def ret(cls: str) -> float:
                j = ci[cls]
                return rb.average_precision(y[idx] == j, s[w0][idx, j]) / \
                    rb.average_precision(y[idx] == j, s[1.0][idx, j])
            return ret(h) - ret(e)

        value, lo, hi = rb.bootstrap(stat, len(y_te), n_boot=st.n_boot)
        chance = float((y_te == ci[hardest]).mean())
        hard_full = float(part[(part["class"] == hardest) & np.isclose(part["width"], 1.0)
                               ]["ap"].iloc[0])
        problem = (f"the hardest class ({hardest}) is at chance at full width (AP "
                   f"{hard_full:.3f} vs prevalence {chance:.3f}, {int((y_te == ci[hardest]).sum())}"
                   " test images): a retention of chance says nothing"
                   if hard_full <= 1.5 * chance else None)
        deltas.append((test.display_name, value, lo, hi, problem))
        for rank, c in (("hardest", hardest), ("easiest", easiest)):
            sel = part[part["class"] == c].sort_values("width")
            extremes.append({"dataset": test.display_name, "rank": rank, "class": c,
                             **{f"s={w:g}": a for w, a in zip(sel["width"], sel["ap"],
                                                              strict=True)}})
    ref = _paper_retention("classwise", "class_rank")
    small = ref[ref["s"] == ref["s"].min()].pivot_table(index="series", columns="class_rank",
                                                       values="retention")
    paper = small["hardest"] - small["easiest"]
    rows_v = [_row("class-wise AP", f"AP retention at s = {min(st.widths):g}, hardest minus "
                   f"easiest class ({st.model} on {d})", (float(paper.min()), float(paper.max())),
                   v, lo, hi, "bootstrap over test images; paper: m-bigearthnet, range over "
                   "its 3 models (a different dataset)", max_width=0.5,
                   untestable=problem if problem or profile.pretrained
                   else RANDOM_WEIGHTS)
              for d, v, lo, hi, problem in deltas]
    return {"table": pd.DataFrame(rows), "extremes": pd.DataFrame(extremes),
            "verdicts": rows_v, "paper": ref}


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
                   "bootstrap over test images; paper: at most 2.8 points",
                   untestable=None if profile.pretrained else RANDOM_WEIGHTS)
    return {"table": table, "verdict": verdict}
