"""Controls that every slimmability claim needs beside it.

High retention alone says nothing: a network with *random* weights keeps a large share of its
own k-NN accuracy at small widths too, and at the smallest widths a slimmed encoder can score no
better than its own embeddings with no transformer block run. This module builds both controls:

* :func:`random_init_models`: the same architecture with random weights, one per init seed,
  labelled ``"<name> [random init <seed>]"`` so they run through the same :func:`slimlib.sweep`
  and land in the same table as the pretrained model;
* :func:`embedding_only`: a copy of a (pretrained) encoder whose transformer blocks are skipped
  (patch embedding -> final norm -> the model's own pooling);
* :func:`embedding_floor`: **the embedding-only floor** the book reports, the mean over the
  patch tokens that the model hands its first block (patch embedding plus position, and where
  the model adds them channel/month, embeddings; class and register tokens dropped), for every
  model whatever its pooling. :func:`embedding_only` alone is no floor for a CLS-pooled model:
  with no block run its CLS token is the same constant for every image, so its probe sits at
  chance and says nothing about what the embedding carries. :func:`floor_scores` probes the
  floor and says when its features are degenerate (constant over the test images);
* :func:`compare`: per width, the pretrained metric, the random-init mean (and spread), the
  embedding-only floor, retention, "above random init", "above the floor" and the "share of
  the pretrained gain kept" ``(metric(s) - floor) / (metric(1) - floor)`` — *not defined*
  (NaN, with the reason in ``gain_kept_note``) where the floor is degenerate or the full model
  does not beat it. Differences get paired image-bootstrap intervals
  (:func:`slimlib.sweeping.intervals.bootstrap`) where the rows carry per-image ``outcomes``, and a
  binomial ±2 SE interval otherwise; column ``interval`` says which.

See docs/evaluation.md, "The embedding-only floor".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimlib.sweeping._floors import (
    EmbeddingFloor,
    SkippedBlock,
    degenerate_features,
    embedding_floor,
    embedding_only,
    floor_scores,
)

__all__ = [
    "RANDOM_TAG", "embedding_only", "embedding_floor", "EmbeddingFloor", "random_init", "random_init_models",
    "control_label", "split_label", "is_control", "floor_scores", "degenerate_features",
    "compare", "binomial_se", "at_smallest", "distinguishable", "FLOOR_DEGENERATE",
    "FLOOR_NOT_BEATEN", "PAIRED", "BINOMIAL", "SkippedBlock",
]

#: ``gain_kept_note`` where the floor's features are constant over the test images.
FLOOR_DEGENERATE = ("not defined: the floor's features are constant over the test images, so "
                    "its score is chance, not a measurement of the embedding")
#: ``gain_kept_note`` where the full model does not beat its floor (no gain to keep).
FLOOR_NOT_BEATEN = "not defined: the full-width model does not beat its floor (acc(1) <= floor)"
#: ``interval`` of rows whose intervals are paired image-bootstrap intervals.
PAIRED = "paired image bootstrap, 95 %"
#: ``interval`` of rows without per-image outcomes: unpaired binomial ±2 SE.
BINOMIAL = "binomial ±2 SE (no per-image outcomes; unpaired)"

#: How a random-init control is named in a sweep table: ``"<model> [random init <seed>]"``.
RANDOM_TAG = "[random init {seed}]"
_LABEL = re.compile(r"^(?P<base>.*) \[random init (?P<seed>-?\d+)\]$")


def control_label(name: str, seed: int) -> str:
    """The sweep-table name of the random-init control ``name`` with init ``seed``."""
    return f"{name} {RANDOM_TAG.format(seed=int(seed))}"


def split_label(label: str) -> tuple[str, int | None]:
    """``("galileo-nano", 1)`` for ``"galileo-nano [random init 1]"``; ``(label, None)`` else."""
    match = _LABEL.match(str(label))
    return (match["base"], int(match["seed"])) if match else (str(label), None)


def is_control(labels: Iterable[str], *, of: Iterable[str] | None = None) -> np.ndarray:
    """Boolean mask: which sweep-table model labels are random-init controls (of one of the
    models ``of``, when given)."""
    bases = None if of is None else set(of)
    split = [split_label(m) for m in labels]
    return np.array([seed is not None and (bases is None or base in bases)
                     for base, seed in split], dtype=bool)


def random_init(model: str | nn.Module, seed: int = 0, **load_options: Any) -> nn.Module:
    """The random-init control of ``model``: the same architecture with random weights,
    drawn reproducibly from ``seed`` (torch's global RNG state is restored afterwards).

    * a registry name: ``models.load(name, pretrained=False, **load_options)`` under
      ``torch.manual_seed(seed)``: the architecture's own initialisation, as its authors
      define it (slimlib's embedded models get ``init_seed=seed``, since they seed their own
      init). The book's controls are these.
    * a module (any ``nn.Module``, e.g. yours in :func:`slimlib.diagnose`): a copy in which
      every module with ``reset_parameters`` (Linear, Conv, LayerNorm, ...) re-initialises
      itself and any other parameter (class token, position embedding) gets N(0, 0.02²);
      LayerScale-like gains (``gamma``, ``ls1``, ``ls2``) keep their value.
    """
    import copy

    from slimlib import models

    seed = int(seed)
    if isinstance(model, str):
        options = dict(load_options)
        if models.spec(model).family == "embedded":
            options.setdefault("init_seed", seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return models.load(model, pretrained=False, **options)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a registry name or an nn.Module; got {type(model)}")
    if load_options:
        raise TypeError(f"load options {sorted(load_options)} apply to a registry name only")
    new = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        covered: set[int] = set()
        for module in new.modules():
            if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
                module.reset_parameters()
                covered.update(id(p) for p in module.parameters(recurse=False))
        for name, param in new.named_parameters():
            if id(param) in covered or name.endswith(("gamma", ".ls1", ".ls2")):
                continue
            param.normal_(0.0, 0.02)
    return new.eval()


def random_init_models(name: str, seeds: Iterable[int] = (0, 1, 2), **load_options: Any
                       ) -> dict[str, nn.Module]:
    """``{control_label(name, seed): random_init(name, seed, ...)}`` per seed.

    Raises:
        ValueError: no seed, or two seeds gave identical weights (a control band of copies).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("random_init_models needs at least one seed")
    out = {control_label(name, seed): random_init(name, seed, **load_options) for seed in seeds}
    firsts = [torch.cat([p.detach().flatten()[:64] for p in m.parameters()]) for m in out.values()]
    if any(torch.equal(firsts[0], f) for f in firsts[1:]):
        raise ValueError(f"random_init_models({name!r}): different seeds gave identical weights; "
                         "the loader ignores torch's RNG, so the control would be copies")
    return out


def binomial_se(p: Any, n: Any) -> Any:
    """Standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on ``n`` images
    (a macro accuracy on near-balanced classes is close to this)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.sqrt(p * (1 - p) / n), math.nan)


def _outcome_list(cells: Iterable[Any]) -> list[Any] | None:
    """Decoded outcomes of each row, or ``None`` if a row has none or a malformed cell (those
    rows then get the labelled binomial interval)."""
    from slimlib.sweeping.outcomes import decode_all

    try:
        return decode_all(cells)
    except ValueError:
        return None


def _paired_intervals(groups: dict[str, list[Any]], *, n_boot: int, seed: int
                      ) -> dict[str, tuple[float, float, float]]:
    """``{statistic: (lo, hi, sd)}`` of the paired differences that ``groups`` allow.

    Groups: ``pre`` (the slimmed model, per probe seed), ``full`` (width 1), ``floor``, and
    ``rand<i>`` per init seed (init seeds are resampled, as probe seeds are).
    """
    from slimlib.sweeping.intervals import bootstrap, interval

    if "pre" not in groups:
        return {}
    try:
        _, draws = bootstrap(groups, n_boot=n_boot, seed=seed)
    except ValueError:  # other test images: nothing can be paired
        return {}
    out: dict[str, tuple[float, float, float]] = {}

    def put(name: str, d: np.ndarray) -> None:
        lo, hi = interval(d)
        finite = d[np.isfinite(d)]
        out[name] = (lo, hi, float(np.std(finite)) if finite.size else math.nan)

    rand = [draws[k] for k in sorted(draws) if k.startswith("rand")]
    if rand:
        stack = np.stack(rand)                                   # inits × draws
        if len(rand) > 1:
            rng = np.random.default_rng(seed + 7919)
            pick = rng.integers(0, len(rand), size=(n_boot, len(rand)))
            mean = stack[pick, np.arange(n_boot)[:, None]].mean(axis=1)
        else:
            mean = stack[0]
        put("above_random", draws["pre"] - mean)
    if "floor" in draws:
        put("above_floor", draws["pre"] - draws["floor"])
        if "full" in draws:
            with np.errstate(divide="ignore", invalid="ignore"):
                denom = draws["full"] - draws["floor"]
                put("gain_kept", np.where(denom > 0, (draws["pre"] - draws["floor"]) / denom,
                                          np.nan))
    return out


def compare(table: pd.DataFrame, floor: pd.DataFrame | None = None, *, n_boot: int | None = None,
            seed: int = 0) -> pd.DataFrame:
    """Pretrained vs its controls, per model, dataset, protocol and width.

    Args:
        table: sweep rows (probe rows) holding a pretrained model ``M`` and its random-init
            controls ``control_label(M, seed)`` (any number of seeds), same widths; with an
            ``outcomes`` column (:mod:`slimlib.sweeping.outcomes`) the differences get paired
            intervals.
        floor: :func:`floor_scores` output (optional).
        n_boot: bootstrap draws (``None``: :data:`slimlib.sweeping.intervals.N_BOOT`).
        seed: seed of the bootstrap.

    Returns:
        One row per pretrained model, dataset, protocol and width that the controls also ran:
        ``rel_compute, value`` (pretrained, seed mean), ``se`` (binomial SE on ``n_test``),
        ``full`` (value at width 1), ``retention``, ``random_mean, random_min, random_max,
        n_random`` (over init seeds), ``random_full``, ``random_retention``,
        ``above_random = value - random_mean`` with ``above_random_se`` and
        ``above_random_lo``/``_hi``, and, when ``floor`` is given, ``floor``, ``floor_se``,
        ``floor_degenerate``, ``above_floor = value - floor`` (``_se``, ``_lo``, ``_hi``) and
        ``gain_kept = (value - floor) / (full - floor)`` (``_lo``, ``_hi``) — NaN, with the
        reason in ``gain_kept_note``, where the floor is degenerate (:data:`FLOOR_DEGENERATE`)
        or ``full <= floor`` (:data:`FLOOR_NOT_BEATEN`). ``interval`` says how the intervals
        were made: :data:`PAIRED` (image bootstrap on the shared test images, probe and init
        seeds resampled; ``_se`` is the draws' SD) or :data:`BINOMIAL` (``value ± 2 SE``,
        unpaired; no ``gain_kept`` interval).
    """
    from slimlib.sweeping.intervals import N_BOOT

    n_boot = N_BOOT if n_boot is None else int(n_boot)
    needed = {"model", "dataset", "protocol", "width", "value"}
    if not needed <= set(table.columns):
        raise ValueError(f"table lacks columns {sorted(needed - set(table.columns))}")
    probe = table[table["protocol"] != "features"].copy()
    probe["width"] = probe["width"].astype(float).round(9)
    split = probe["model"].map(split_label)
    probe["base"] = [b for b, _ in split]
    probe["init_seed"] = [s for _, s in split]
    if "n_test" not in probe:
        probe["n_test"] = np.nan
    keys = ["base", "dataset", "protocol", "width"]
    pre = probe[probe["init_seed"].isna()]
    rnd = probe[probe["init_seed"].notna()]
    agg = {"value": ("value", "mean"), "n_test": ("n_test", "max")}
    if "rel_compute" in pre:
        agg["rel_compute"] = ("rel_compute", "mean")
    ours = pre.groupby(keys).agg(**agg).reset_index()
    # random: mean over probe seeds per init seed, then spread over init seeds
    per_init = rnd.groupby([*keys, "init_seed"])["value"].mean().reset_index()
    ctrl = per_init.groupby(keys)["value"].agg(
        random_mean="mean", random_min="min", random_max="max", n_random="count").reset_index()
    out = ours.merge(ctrl, on=keys, how="inner")
    if out.empty:
        raise ValueError("no width has both the pretrained model and its random-init controls "
                         f"(controls are named like {control_label('MODEL', 0)!r})")
    full = ours[np.isclose(ours["width"], 1.0)].set_index(keys[:3])["value"].rename("full")
    rfull = ctrl[np.isclose(ctrl["width"], 1.0)].set_index(keys[:3])["random_mean"]
    out = out.join(full, on=keys[:3]).join(rfull.rename("random_full"), on=keys[:3])
    out["se"] = binomial_se(out["value"], out["n_test"])
    out["retention"] = out["value"] / out["full"]
    out["random_retention"] = out["random_mean"] / out["random_full"]
    out["above_random"] = out["value"] - out["random_mean"]
    out["above_random_se"] = np.sqrt(2.0) * out["se"]
    has_floor = floor is not None and not floor.empty
    if has_floor:
        fl = floor.assign(degenerate=floor.get("degenerate", False))
        fl = fl.groupby(["model", "dataset", "protocol"]).agg(
            floor=("value", "mean"), floor_n=("n_test", "max"),
            floor_degenerate=("degenerate", "any")).reset_index()
        fl = fl.rename(columns={"model": "base"})
        out = out.merge(fl, on=keys[:3], how="left")
        out["floor_degenerate"] = out["floor_degenerate"].fillna(False).astype(bool)
        out["floor_se"] = binomial_se(out["floor"], out["floor_n"])
        out["above_floor"] = out["value"] - out["floor"]
        out["above_floor_se"] = np.sqrt(out["se"] ** 2 + out["floor_se"] ** 2)
        gain = (out["value"] - out["floor"]) / (out["full"] - out["floor"])
        note = np.where(out["floor_degenerate"], FLOOR_DEGENERATE,
                        np.where(~(out["full"] > out["floor"]) & out["floor"].notna(),
                                 FLOOR_NOT_BEATEN, ""))
        out["gain_kept"] = gain.where(note == "")
        out["gain_kept_note"] = note
        out = out.drop(columns="floor_n")
    _add_intervals(out, pre, rnd, floor if has_floor else None, keys, n_boot=n_boot, seed=seed)
    return out.rename(columns={"base": "model"}).sort_values(
        ["model", "dataset", "protocol", "width"]).reset_index(drop=True)


def _add_intervals(out: pd.DataFrame, pre: pd.DataFrame, rnd: pd.DataFrame,
                   floor: pd.DataFrame | None, keys: list[str], *, n_boot: int,
                   seed: int) -> None:
    """Fill the ``*_lo``/``*_hi`` columns and ``interval`` of :func:`compare` in place."""
    stats = ["above_random"] + (["above_floor", "gain_kept"] if floor is not None else [])
    for stat in stats:
        out[f"{stat}_lo"] = math.nan
        out[f"{stat}_hi"] = math.nan
    out["interval"] = BINOMIAL
    paired_ok = "outcomes" in pre
    pre_groups = dict(tuple(pre.groupby(keys))) if paired_ok else {}
    rnd_groups = dict(tuple(rnd.groupby(keys))) if paired_ok and "outcomes" in rnd else {}
    floor_groups = {}
    if floor is not None and "outcomes" in floor:
        floor_groups = dict(tuple(floor.groupby(["model", "dataset", "protocol"])))
    for i, row in out.iterrows():
        key = tuple(row[k] for k in keys)
        groups: dict[str, list[Any]] = {}
        pre_rows = pre_groups.get(key)
        if pre_rows is not None and (cells := _outcome_list(pre_rows["outcomes"])):
            groups["pre"] = cells
        full_rows = pre_groups.get((*key[:3], 1.0))
        if full_rows is not None and (cells := _outcome_list(full_rows["outcomes"])):
            groups["full"] = cells
        rnd_rows = rnd_groups.get(key)
        if rnd_rows is not None:
            for init, part in rnd_rows.groupby("init_seed"):
                if (cells := _outcome_list(part["outcomes"])):
                    groups[f"rand{int(init)}"] = cells
            if sum(k.startswith("rand") for k in groups) < rnd_rows["init_seed"].nunique():
                groups = {k: v for k, v in groups.items() if not k.startswith("rand")}
        floor_rows = floor_groups.get(key[:3])
        if floor_rows is not None and (cells := _outcome_list(floor_rows["outcomes"])):
            groups["floor"] = cells
        paired = _paired_intervals(groups, n_boot=n_boot, seed=seed) if groups else {}
        for stat in stats:
            if stat in paired:
                lo, hi, sd = paired[stat]
                out.loc[i, [f"{stat}_lo", f"{stat}_hi"]] = [lo, hi]
                if stat != "gain_kept":
                    out.loc[i, f"{stat}_se"] = sd
            elif stat != "gain_kept":
                half = 2.0 * out.loc[i, f"{stat}_se"]
                out.loc[i, [f"{stat}_lo", f"{stat}_hi"]] = [out.loc[i, stat] - half,
                                                            out.loc[i, stat] + half]
        wanted = [s for s in stats if s != "gain_kept"]
        if all(s in paired for s in wanted):
            out.loc[i, "interval"] = PAIRED
        elif any(s in paired for s in wanted):
            out.loc[i, "interval"] = "; ".join(
                f"{s}: {PAIRED if s in paired else BINOMIAL}" for s in wanted)
        if floor is not None and out.loc[i, "gain_kept_note"] != "":
            out.loc[i, ["gain_kept_lo", "gain_kept_hi"]] = [math.nan, math.nan]


def distinguishable(diff: Any, se: Any, *, z: float = 2.0) -> Any:
    """``"above"`` / ``"below"`` where ``|diff| > z * se``, else ``"within noise"``."""
    diff, se = np.asarray(diff, dtype=float), np.asarray(se, dtype=float)
    return np.where(diff > z * se, "above", np.where(diff < -z * se, "below", "within noise"))


def _reading(lo: Any, hi: Any) -> Any:
    """``"above"`` where the interval lies above 0, ``"below"`` where below, else
    ``"within noise"``."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return np.where(lo > 0, "above", np.where(hi < 0, "below", "within noise"))


def at_smallest(cmp: pd.DataFrame) -> pd.DataFrame:
    """The smallest-width row of each model, dataset and protocol in :func:`compare` output,
    with computed readings: is the slimmed model above its random-init control and above its
    embedding-only floor (its interval, ``*_lo``/``*_hi``, excludes 0)?"""
    idx = cmp.groupby(["model", "dataset", "protocol"])["width"].idxmin()
    out = cmp.loc[idx].reset_index(drop=True)
    out["vs random init"] = _reading(out["above_random_lo"], out["above_random_hi"])
    if "floor" in out:
        out["vs embedding-only floor"] = _reading(out["above_floor_lo"], out["above_floor_hi"])
    return out
