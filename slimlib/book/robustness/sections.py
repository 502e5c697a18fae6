"""Chapter 10's geographic-shift, fine-tuning and training-dynamics sections (the settings,
helpers and the other sections are in :mod:`slimlib.book.robustness.chapter`). Each function takes
the resolved profile and :class:`~slimlib.book.robustness.chapter.RobustnessSettings` and returns
its tables and verdict row(s). :func:`verdict_table` runs every section of the chapter and
returns their verdict rows only (what chapter 1's claims table shows)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from slimlib.book.claims import rules as er
from slimlib.book.profiles import settings_of
from slimlib.book.robustness import analyses as rb
from slimlib.book.robustness.chapter import (
    RANDOM_WEIGHTS,
    VERDICT_COLUMNS,
    RobustnessSettings,
    _example,
    _load,
    _model_threads,
    _pair,
    _row,
    _threads,
    _threads_for,
    rgb_dataset,
)
from slimlib.book.robustness.paper import paper_band as _paper_band
from slimlib.book.robustness.paper import paper_effect
from slimlib.book.robustness.paper import paper_retention as _paper_retention
from slimlib.sweeping.controls import control_label

__all__ = ["geographic", "finetuning", "dynamics", "sections", "verdict_rows", "verdict_table"]


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
    from slimlib.book.robustness import chapter as rc

    return (("class imbalance", rc.imbalance), ("class-wise", rc.classwise),
            ("implicit order", rc.implicit_order), ("geographic shift", geographic),
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
