"""Controls that every slimmability claim needs beside it.

High retention alone says nothing: a network with *random* weights keeps a large share of its
own k-NN accuracy at small widths too, and at the smallest widths a slimmed encoder can score no
better than its own embeddings with no transformer block run. This module builds both controls:

* :func:`random_init_models`: the same architecture with random weights, one per init seed,
  labelled ``"<name> [random init <seed>]"`` so they run through the same :func:`slimlib.sweep`
  and land in the same table as the pretrained model;
* :func:`embedding_only`: a copy of a (pretrained) encoder whose transformer blocks are skipped
  (patch embedding -> final norm -> pooling), and :func:`floor_scores`, its probe scores;
* :func:`compare`: per width, the pretrained metric, the random-init mean (and spread), the
  embedding-only floor, retention, "retention above random init" and the "share of the
  pretrained gain kept" ``(metric(s) - floor) / (metric(1) - floor)``, each with a standard error.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = [
    "RANDOM_TAG", "embedding_only", "random_init_models", "control_label", "split_label",
    "is_control",
    "floor_scores", "compare", "binomial_se", "at_smallest", "distinguishable",
]

#: How a random-init control is named in a sweep table: ``"<model> [random init <seed>]"``.
RANDOM_TAG = "[random init {seed}]"
_LABEL = re.compile(r"^(?P<base>.*) \[random init (?P<seed>-?\d+)\]$")


class SkippedBlock(nn.Module):
    """Stands in for a transformer block and returns its input unchanged.

    Accepts (and ignores) any extra arguments a model passes its blocks (attention masks, ...).
    Shapes: ``x`` (B, N, D) -> (B, N, D).
    """

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return x


def embedding_only(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every transformer block skipped (the embedding-only floor).

    What is left is what slimming never touches: patch/position (and, where the model has
    them, channel/month) embeddings, the final norm and the pooling. At the smallest widths a
    slimmed model cannot be expected to beat this by much; where it does not, the blocks
    contribute nothing and "retention" is the embedding's. ``model`` is not modified; the
    copy keeps ``.spec``.

    Raises:
        TypeError: ``model`` has no transformer blocks (see :func:`slimlib.find_blocks`).
    """
    from slimlib.slimming import find_blocks

    names = [name for name, _ in find_blocks(model)]
    new = copy.deepcopy(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        setattr(parent, child, SkippedBlock())
    return new.eval()


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


def random_init_models(name: str, seeds: Iterable[int] = (0, 1, 2), **load_options: Any
                       ) -> dict[str, nn.Module]:
    """``{control_label(name, seed): models.load(name, pretrained=False, ...)}`` per seed.

    Each network is drawn from torch's RNG seeded with ``seed`` (the global RNG state is
    restored afterwards; slimlib's embedded models get ``init_seed=seed``, since they seed
    their own init), so the controls are reproducible and differ between seeds.

    Raises:
        ValueError: no seed, or two seeds gave identical weights (a control band of copies).
    """
    from slimlib import models

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("random_init_models needs at least one seed")
    out: dict[str, nn.Module] = {}
    state = torch.random.get_rng_state()
    try:
        for seed in seeds:
            torch.manual_seed(seed)
            options = dict(load_options)
            if models.spec(name).family == "embedded":
                options.setdefault("init_seed", seed)
            out[control_label(name, seed)] = models.load(name, pretrained=False, **options)
    finally:
        torch.random.set_rng_state(state)
    firsts = [torch.cat([p.detach().flatten()[:64] for p in m.parameters()]) for m in out.values()]
    if any(torch.equal(firsts[0], f) for f in firsts[1:]):
        raise ValueError(f"random_init_models({name!r}): different seeds gave identical weights; "
                         "the loader ignores torch's RNG, so the control would be copies")
    return out


def floor_scores(encoder: nn.Module, datasets: Mapping[str, tuple[Any, Any]], *,
                 name: str, protocols: Iterable[str] = ("knn",), seeds: Iterable[int] = (0,),
                 batch_size: int = 256, device: Any = None, train_fraction: float = 1.0,
                 settings: Any = None) -> pd.DataFrame:
    """Probe scores of :func:`embedding_only` ``(encoder)`` on each ``(train, test)`` pair.

    Features go through the feature cache like any sweep's; ``seed`` and ``train_fraction``
    mean what they mean in :func:`slimlib.probes.knn_score`; ``settings`` says where the cache
    is (``None``: :func:`slimlib.settings.current`). Returns one row per dataset,
    protocol and seed: ``model, dataset, protocol, seed, value, n_test``.
    """
    from slimlib import features, probes

    floor = embedding_only(encoder)
    rows = []
    for dataset, (train, test) in datasets.items():
        x_train, y_train = features.extract(floor, train, batch_size=batch_size, device=device,
                                            progress=False, name=f"{name} (embedding only)",
                                            settings=settings)
        x_test, y_test = features.extract(floor, test, batch_size=batch_size, device=device,
                                          progress=False, name=f"{name} (embedding only)",
                                          settings=settings)
        for protocol in protocols:
            for seed in seeds:
                value = probes.score(protocol, x_train, y_train, x_test, y_test, seed=int(seed),
                                     train_fraction=train_fraction)
                rows.append({"model": name, "dataset": dataset, "protocol": protocol,
                             "seed": int(seed), "value": float(value),
                             "n_test": int(len(y_test))})
    return pd.DataFrame(rows, columns=["model", "dataset", "protocol", "seed", "value",
                                       "n_test"])


def binomial_se(p: Any, n: Any) -> Any:
    """Standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on ``n`` images
    (a macro accuracy on near-balanced classes is close to this)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.sqrt(p * (1 - p) / n), math.nan)


def compare(table: pd.DataFrame, floor: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pretrained vs its controls, per model, dataset, protocol and width.

    Args:
        table: sweep rows (probe rows) holding a pretrained model ``M`` and its random-init
            controls ``control_label(M, seed)`` (any number of seeds), same widths.
        floor: :func:`floor_scores` output (optional).

    Returns:
        One row per pretrained model, dataset, protocol and width that the controls also ran:
        ``rel_compute, value`` (pretrained, seed mean), ``se`` (binomial SE on ``n_test``),
        ``full`` (value at width 1), ``retention``, ``random_mean, random_min, random_max,
        n_random`` (over init seeds), ``random_full``, ``random_retention``,
        ``above_random = value - random_mean`` and ``above_random_se`` (unpaired SE), and, when
        ``floor`` is given, ``floor``, ``floor_se`` and
        ``gain_kept = (value - floor) / (full - floor)``.
    """
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
    if floor is not None and not floor.empty:
        fl = floor.groupby(["model", "dataset", "protocol"]).agg(
            floor=("value", "mean"), floor_n=("n_test", "max")).reset_index()
        fl = fl.rename(columns={"model": "base"})
        out = out.merge(fl, on=keys[:3], how="left")
        out["floor_se"] = binomial_se(out["floor"], out["floor_n"])
        out["gain_kept"] = (out["value"] - out["floor"]) / (out["full"] - out["floor"])
        out = out.drop(columns="floor_n")
    return out.rename(columns={"base": "model"}).sort_values(
        ["model", "dataset", "protocol", "width"]).reset_index(drop=True)


def distinguishable(diff: Any, se: Any, *, z: float = 2.0) -> Any:
    """``"above"`` / ``"below"`` where ``|diff| > z * se``, else ``"within noise"``."""
    diff, se = np.asarray(diff, dtype=float), np.asarray(se, dtype=float)
    return np.where(diff > z * se, "above", np.where(diff < -z * se, "below", "within noise"))


def at_smallest(cmp: pd.DataFrame) -> pd.DataFrame:
    """The smallest-width row of each model, dataset and protocol in :func:`compare` output,
    with computed readings: is the slimmed model above its random-init control and above its
    embedding-only floor by more than 2 standard errors?"""
    idx = cmp.groupby(["model", "dataset", "protocol"])["width"].idxmin()
    out = cmp.loc[idx].reset_index(drop=True)
    out["vs random init"] = distinguishable(out["above_random"], out["above_random_se"])
    if "floor" in out:
        se = np.sqrt(out["se"] ** 2 + out["floor_se"] ** 2)
        out["above_floor"] = out["value"] - out["floor"]
        out["above_floor_se"] = se
        out["vs embedding-only floor"] = distinguishable(out["above_floor"], se)
    return out
