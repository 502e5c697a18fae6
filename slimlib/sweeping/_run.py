"""Sweep orchestration: :func:`sweep` runs one ``_Job`` per model × dataset, width after width.

Each job prepares its inputs once, slims the model per width, extracts (cached) features,
scores them (:func:`slimlib.probes.score`) and appends finished rows to the table
(:mod:`slimlib.sweeping._table`), so a killed run loses at most the row in progress.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimlib import features as _features
from slimlib._validation import check_choice, check_int
from slimlib.constants import FEATURE_METRICS, ORDERS, SCALES, WIDTHS
from slimlib.specs import ImageDataset, ModelSpec
from slimlib.sweeping._inputs import (
    SweepData,
    _check_parts,
    _check_protocols,
    _check_seeds,
    _dedupe_widths,
    _labels_of,
    as_datasets,
    as_models,
)
from slimlib.sweeping._probing import _feature_metrics, _score
from slimlib.sweeping._table import (
    NO_SEED,
    _frame_keys,
    _ResultFile,
    _row_key,
    read_table,
)

__all__ = ["sweep"]



class _Timer(defaultdict):
    def __init__(self) -> None:
        super().__init__(float)

    def add(self, stage: str, start: float) -> float:
        elapsed = time.perf_counter() - start
        self[stage] += elapsed
        return elapsed


def _short(*digests: str) -> str:
    return hashlib.blake2b("".join(digests).encode(), digest_size=6).hexdigest()


def _dims(slimmed: nn.Module) -> tuple[Any, Any]:
    from slimlib.slimming import describe

    info = describe(slimmed)
    dims = []
    for col in ("d_k", "d_h"):
        vals = list(dict.fromkeys(int(v) for v in info[col]))
        dims.append(vals[0] if len(vals) == 1 else "/".join(map(str, vals)))
    return dims[0], dims[1]


def _example_input(model: nn.Module, data: SweepData) -> torch.Tensor:
    if isinstance(data.test, ImageDataset):
        spec = model.spec
        return torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
    return torch.as_tensor(data.test[0][:1]).float()


@dataclass
class _Settings:
    """Options shared by every model × dataset job of one :func:`sweep` call."""

    parts: tuple[str, ...]
    order: str
    scale: str
    train_fraction: float
    batch_size: int
    device: torch.device
    precision: str
    progress: bool
    paths: Any  # where the feature cache is (a slimlib.settings.Settings)

    @property
    def parts_label(self) -> str:
        return "+".join(self.parts)

    @property
    def deterministic(self) -> bool:
        """Probe scores do not depend on the seed (full training set, fixed slimming)."""
        return self.train_fraction == 1.0 and self.order != "random"


class _Job:
    """One model on one dataset: prepares inputs once and evaluates width after width."""

    def __init__(self, name: str, model: nn.Module, model_fp: str, data: SweepData,
                 cfg: _Settings, table: _ResultFile, timer: _Timer,
                 compute_memo: dict[tuple, Any]) -> None:
        self.name, self.model, self.model_fp, self.data = name, model, model_fp, data
        self.cfg, self.table, self.timer = cfg, table, timer
        self.compute_memo = compute_memo
        image_data = isinstance(data.train, ImageDataset)
        spec = getattr(model, "spec", None)
        if image_data and not isinstance(spec, ModelSpec):
            raise ValueError(f"model {name!r} has no .spec (ModelSpec), so images of "
                             f"{data.name!r} cannot be prepared for it")
        self.prep_id = _features.preprocessing_id(spec if image_data else None)
        self.notes = list(data.notes)
        if image_data:
            self.notes += _features.preparation_notes(data.train, spec)
        self._inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.fold_ids = data.fold_ids() if data.folds else None
        self._reference: np.ndarray | None = None

    # -------------------------------------------------------------- helpers
    def slim(self, width: float, order: str, seed: int | None) -> nn.Module:
        from slimlib.slimming import slim

        return slim(self.model, width, parts=self.cfg.parts, order=order, seed=seed,
                    scale=self.cfg.scale)

    def row(self, protocol: str, metric: str, seed: int, width: float) -> dict[str, Any]:
        return {"model": self.name, "model_fp": self.model_fp[:12], "dataset": self.data.name,
                "data_fp": self.data.fp, "synthetic": self.data.synthetic,
                "protocol": protocol, "metric": metric, "seed": seed, "width": width,
                "parts": self.cfg.parts_label, "order": self.cfg.order, "scale": self.cfg.scale,
                "train_fraction": self.cfg.train_fraction}

    def inputs(self, split: str) -> tuple[torch.Tensor, torch.Tensor] | ImageDataset:
        """Prepared ``(x, y)`` of a split, prepared once and reused for every width; the
        :class:`ImageDataset` itself when too large to hold prepared (extract then streams)."""
        ds = self.data.train if split == "train" else self.data.test
        if not isinstance(ds, ImageDataset):
            return _features.as_prepared_pair(ds)
        if _features.prepared_gib(ds, self.model.spec) > _features.MAX_PREPARED_GIB:
            return ds
        if split not in self._inputs:
            start = time.perf_counter()
            self._inputs[split] = (_features.prepare_dataset(ds, self.model.spec), ds.labels)
            self.timer.add("prepare", start)
        return self._inputs[split]

    def features(self, split: str, slimmed: nn.Module, fingerprint: str, width: float
                 ) -> tuple[np.ndarray, np.ndarray, float]:
        """Cached or freshly extracted ``(features, labels, extraction seconds)``.

        The cache key holds :func:`~slimlib.features.module_fingerprint` of the *slimmed*
        model, which covers the original weights and width, parts, order, seed and scale, so
        widths that yield the same model (ViT-S: s = 0.002 and 0.0025) share one entry.
        """
        key = _features.feature_key(
            model=self.name, weights=fingerprint, dataset=self.data.name, split=split,
            data=self.data.fp_train if split == "train" else self.data.fp_test,
            preprocessing=self.prep_id, precision=self.cfg.precision)
        hit = _features.load_cached(
            key, labels=_labels_of(self.data.train if split == "train" else self.data.test),
            cache_root=self.cfg.paths.cache)
        if hit is not None:
            return hit[0], hit[1], 0.0
        inputs = self.inputs(split)
        start = time.perf_counter()
        feats, labels = _features.extract(
            slimmed, inputs, batch_size=self.cfg.batch_size, device=self.cfg.device,
            cache_key=key, progress=self.cfg.progress, name=self.name, width=width,
            settings=self.cfg.paths)
        return feats, labels, self.timer.add("extract", start)

    def reference(self) -> np.ndarray:
        """Width-1 test features (the CKA reference), computed or loaded once per job."""
        if self._reference is None:
            full = self.slim(1.0, "first", None)
            fingerprint = _features.module_fingerprint(full)
            self._reference = self.features("test", full, fingerprint, 1.0)[0]
        return self._reference

    def full_flops(self, example: torch.Tensor) -> int:
        key = ("full", tuple(example.shape))
        if key not in self.compute_memo:
            from slimlib.measure import flops

            self.compute_memo[key] = flops(self.slim(1.0, "first", None), example)
        return self.compute_memo[key]

    # -------------------------------------------------------------- main loop
    def run(self, widths: Sequence[float], seeds: Sequence[int], protocols: Sequence[str],
            metrics: bool) -> list[tuple]:
        """Evaluate all missing rows; returns the keys of all requested rows."""
        requested: list[tuple] = []
        variants: list[int | None] = list(seeds) if self.cfg.order == "random" else [None]
        bar = _tqdm(widths, self.cfg.progress, f"{self.name} × {self.data.name}")
        for width in bar:
            for variant in variants:
                probe_seeds = seeds if variant is None else [variant]
                planned = [self.row(p, self.data.metric, s, width) for s in probe_seeds
                           for p in protocols]
                if metrics:
                    fseed = NO_SEED if variant is None else variant
                    planned += [self.row("features", m, fseed, width) for m in FEATURE_METRICS]
                requested += [_row_key(r) for r in planned]
                missing = [r for r in planned if _row_key(r) not in self.table.keys]
                if missing:
                    self.run_width(missing, width, variant)
        return requested

    def run_width(self, missing: list[dict[str, Any]], width: float,
                  variant: int | None) -> None:
        """Compute and append the missing rows of one width (and one random-order seed)."""
        from slimlib.measure import flops, params

        cfg, timer = self.cfg, self.timer
        start = time.perf_counter()
        slimmed = self.slim(width, cfg.order, variant)
        timer.add("slim", start)
        start = time.perf_counter()
        example = _example_input(self.model, self.data)
        memo_key = (round(width, 9), variant, tuple(example.shape))
        if memo_key not in self.compute_memo:  # shared by the datasets of one model
            d_k, d_h = _dims(slimmed)
            n_flops = flops(slimmed, example)
            self.compute_memo[memo_key] = {
                "d_k": d_k, "d_h": d_h, "flops": n_flops,
                "rel_compute": n_flops / self.full_flops(example), "params": params(slimmed)}
        common = {**self.compute_memo[memo_key], "n_train": self.data.n_train,
                  "n_test": self.data.n_test}
        timer.add("flops", start)

        start = time.perf_counter()
        fingerprint = _features.module_fingerprint(slimmed)
        timer.add("slim", start)
        test = self.features("test", slimmed, fingerprint, width)
        # cross-fitted data: one extraction of every image serves as both banks
        train = test if self.data.folds else self.features("train", slimmed, fingerprint, width)
        common["extract_s"] = test[2] + (0.0 if self.data.folds else train[2])

        shared: dict[str, tuple[float, list[str], float, str]] = {}
        feature_values: dict[str, tuple[float, str]] | None = None
        feature_time = 0.0
        for row in missing:
            notes = list(self.notes)
            outcomes = ""
            if row["protocol"] == "features":
                if feature_values is None:
                    full = math.isclose(width, 1.0) and cfg.order != "random"
                    ref = test[0] if full else self.reference()
                    start = time.perf_counter()
                    feature_values = _feature_metrics(test[0], ref)
                    feature_time = timer.add("metrics", start)
                value, note = feature_values[row["metric"]]
                notes += ["test features"] + ([note] if note else [])
                runtime = feature_time
            elif cfg.deterministic and row["protocol"] in shared:
                value, probe_notes, runtime, outcomes = shared[row["protocol"]]
                notes += probe_notes + ["deterministic probe: same score for every seed"]
            else:
                start = time.perf_counter()
                value, probe_notes, outcomes = _score(row["protocol"], train[:2], test[:2],
                                                      row["seed"], cfg.train_fraction,
                                                      folds=self.fold_ids)
                runtime = timer.add("probe", start)
                shared[row["protocol"]] = (value, probe_notes, runtime, outcomes)
                notes += probe_notes
            start = time.perf_counter()
            self.table.append([{**row, **common, "value": value, "runtime_s": runtime,
                                "notes": "; ".join(dict.fromkeys(notes)),
                                "outcomes": outcomes}])
            timer.add("write", start)


def sweep(
    models: Any,
    datasets: Any,
    *,
    widths: Iterable[float] | None = None,
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    protocols: Iterable[str] = ("knn",),
    parts: Sequence[str] = ("attn", "ffn"),
    order: str = "first",
    scale: str = "slimmed",
    pretrained: Any = True,
    train_split: str = "train",
    test_split: str = "test",
    out: str | os.PathLike | None = None,
    metrics: bool = True,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_root: str | os.PathLike | None = None,
    train_fraction: float = 1.0,
    settings: Any = None,
) -> pd.DataFrame:
    """Slim every model to every width and score frozen features on every dataset.

    Args:
        models: registry name(s) for :func:`slimlib.models.load`, module(s) with a ``.spec``,
            or a dict name -> module.
        datasets: registry name(s) for :func:`slimlib.data.load`, ``(train, test)`` pairs of
            :class:`ImageDataset`, or a dict name -> such a pair (or -> prepared
            ``((x_train, y_train), (x_test, y_test))`` tensors), or a
            :class:`~slimlib.probes.CrossFit` / :meth:`SweepData.crossfitted` dataset,
            evaluated by k-fold cross-fitting over all its images (``docs/evaluation.md``).
        widths: width factors in (0, 1]; default :data:`slimlib.measure.WIDTHS` (31).
        seeds: probe seeds (they pick the training subset when ``train_fraction < 1``; with
            ``order="random"`` each seed also draws its own kept indices).
        protocols: ``"knn"`` (k=5, cosine) and/or ``"linear"``.
        parts, order, scale: passed to :func:`slimlib.slimming.slim`.
        pretrained: passed to :func:`slimlib.models.load` for registry names.
        train_split, test_split: split names for registry datasets.
        out: CSV path; default ``<settings.results>/sweep.csv``.
        metrics: also write ``protocol="features"`` rows (:data:`FEATURE_METRICS` on the test
            features; ``cka_full`` compares with the width-1 test features).
        batch_size, device, progress: feature extraction settings (see
            :func:`slimlib.features.extract`).
        data_root: data root for registry datasets and for the embedded models'
            pretraining (default ``settings.data``, i.e. ``$SLIMLIB_DATA``).
        train_fraction: fraction of the training features the probes use (seeded subsets).
        settings: data root, feature cache, results folder and weights
            (:class:`slimlib.settings.Settings`); ``None``: :func:`slimlib.settings.current`.

    Returns:
        The requested rows (columns :data:`COLUMNS`), read back from ``out``; rows already in
        ``out`` are reused, not recomputed. ``table.attrs["timings"]`` holds seconds per stage
        of this call and ``table.attrs["path"]`` the CSV path.

    Raises:
        ValueError: invalid arguments, a model without ``.spec`` for image data, non-finite
            features (names model and width).
    """
    from slimlib.probes import metric_name
    from slimlib.settings import or_current

    settings = or_current(settings)
    if data_root is not None:
        settings = settings.replace(data=data_root)
    widths = _dedupe_widths(WIDTHS if widths is None else widths)
    seeds = _check_seeds(seeds)
    protocols = _check_protocols(protocols)
    parts_t = tuple(_check_parts(parts).split("+"))
    order = check_choice(order, ORDERS, "order")
    scale = check_choice(scale, SCALES, "scale")
    check_int(batch_size, "batch_size")
    if isinstance(train_fraction, bool) or not 0.0 < float(train_fraction) <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1]; got {train_fraction!r}")
    device = _features.resolve_device(device)
    cfg = _Settings(parts=parts_t, order=order, scale=scale,
                    train_fraction=float(train_fraction), batch_size=batch_size, device=device,
                    precision=_features.precision(device), progress=progress,
                    paths=settings)

    timer = _Timer()
    start = time.perf_counter()
    data_items = as_datasets(datasets, train_split=train_split, test_split=test_split,
                             data_root=data_root, settings=settings)
    for d in data_items:
        d.fp_train = _features.data_fingerprint(d.train)
        d.fp_test = _features.data_fingerprint(d.test)
        d.fp = _short(d.fp_train, d.fp_test,
                      *([f"crossfit:{d.folds}:{d.fold_seed}"] if d.folds else []))
        d.metric = metric_name(_labels_of(d.train))
    model_items = as_models(models, pretrained=pretrained, data_root=data_root,
                            settings=settings)
    timer.add("load_data", start)

    path = Path(out) if out is not None else settings.results_dir() / "sweep.csv"
    table = _ResultFile(path)
    requested: list[tuple] = []
    for model_name, load in model_items:
        start = time.perf_counter()
        model = load()
        model_fp = _features.module_fingerprint(model)
        timer.add("load_model", start)
        compute_memo: dict[tuple, Any] = {}
        for data in data_items:
            job = _Job(model_name, model, model_fp, data, cfg, table, timer, compute_memo)
            requested += job.run(widths, seeds, protocols, metrics)
            del job
        del model

    start = time.perf_counter()
    result = _select(read_table(path, quarantine=True), requested)
    timer.add("read", start)
    result.attrs["timings"] = dict(timer)
    result.attrs["path"] = str(path)
    return result


def _tqdm(items: Sequence[Any], progress: bool, desc: str) -> Iterable[Any]:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="width", disable=not progress)


def _select(frame: pd.DataFrame, requested: list[tuple]) -> pd.DataFrame:
    position = {k: i for i, k in reversed(list(enumerate(requested)))}
    keys = _frame_keys(frame)
    frame = frame.assign(_pos=[position.get(k, -1) for k in keys])
    frame = frame[frame["_pos"] >= 0].drop_duplicates("_pos", keep="last")
    return frame.sort_values("_pos").drop(columns="_pos").reset_index(drop=True)
