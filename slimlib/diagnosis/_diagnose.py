"""One-call slimmability diagnosis of your own model on your own data.

:func:`diagnose` slims the model to every width, scores frozen features with the k-NN probe
(and optionally the linear probe) through :func:`slimlib.sweep`, runs a random-init control of
the same architecture through the same sweep, picks the smallest width that keeps a target
retention by k-fold cross-validation on the *training* split, times every width on this
machine, and writes a report (HTML + Markdown + JSON, :mod:`slimlib.diagnosis._report`).

Definitions (also in ``docs/deploy.md``):

* **retention** r(s) = score(s) / score(1) of the test split (the paper's metric).
* **relative compute** c(s) = FLOPs(s) / FLOPs(1) (:func:`slimlib.flops`, attention included).
* **compute floor** c_min = c at d_k' = d_h' = 1 (the smallest compute slimming can reach;
  patch embedding, norms and the softmax over tokens remain).
* **slimmability score** S = ∫ min(max(r, 0), 1) d(log c) / (−log c_lo) over the measured
  range [c_lo, 1] (trapezoids in log c), c_lo the smallest measured relative compute.
  S = 1: all of the score kept at every measured compute.
* **recommended width**: the smallest width s such that the k-fold CV retention on the
  *training* split is >= ``keep`` at s and at every larger measured width
  (:func:`recommend_width`); its held-out test retention is reported beside it.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimlib import features as _features
from slimlib._validation import check_int, check_widths
from slimlib.diagnosis._aligned import DEFAULT_ALIGN, aligned_check
from slimlib.diagnosis._answer import compare_name, role
from slimlib.diagnosis._inputs import (
    ResolvedModel,
    check_data,
    resolve_data,
    resolve_model,
    subset_per_class,
)
from slimlib.diagnosis._sensitivity import SENSITIVITY_WIDTHS, sensitivity_section
from slimlib.slimming import slim
from slimlib.specs import ModelSpec
from slimlib.sweeping.controls import random_init

__all__ = ["diagnose", "DEFAULT_WIDTHS", "slimmability_score", "cv_retention",
           "recommend_width"]

#: Widths of a diagnosis (the paper's grid thinned out; 1.0 is always included).
DEFAULT_WIDTHS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.333, 0.25, 0.1, 0.05, 0.02)
_K = 5


def slimmability_score(rel_compute: Sequence[float], retention: Sequence[float]) -> float:
    """Area under retention vs log relative compute over the measured range, normalised.

    Args:
        rel_compute: relative compute per width, in (0, 1]; must include 1 and one value < 1.
        retention: retention per width (clipped to [0, 1]).

    Returns:
        S in [0, 1] (see the module docstring).
    """
    c = np.asarray(rel_compute, dtype=float)
    r = np.clip(np.asarray(retention, dtype=float), 0.0, 1.0)
    if c.shape != r.shape or c.size < 2 or not np.all((c > 0) & (c <= 1 + 1e-9)):
        raise ValueError("need matching rel_compute in (0, 1] and retention, at least two widths")
    order = np.argsort(c)
    logc, r = np.log(c[order]), r[order]
    span = -logc[0]
    if span <= 0:
        raise ValueError("need at least one width with relative compute < 1")
    return float(np.sum((logc[1:] - logc[:-1]) * (r[1:] + r[:-1]) / 2) / span)


def cv_retention(feats: dict[float, np.ndarray], labels: np.ndarray, *, folds: int = 5,
                 seed: int = 0) -> dict[float, float]:
    """Mean k-NN score over ``folds`` stratified folds of the training features, per width,
    divided by the same at width 1 (``feats`` maps width -> train features (N, D))."""
    from sklearn.model_selection import StratifiedKFold

    from slimlib.probes import knn_score

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(len(labels)), labels))
    scores = {}
    for width, x in feats.items():
        vals = [knn_score(x[tr], labels[tr], x[te], labels[te], k=_K) for tr, te in splits]
        scores[width] = float(np.mean(vals))
    full = scores[max(scores)]
    return {w: v / full if full > 0 else math.nan for w, v in scores.items()}


def recommend_width(cv: dict[float, float], keep: float) -> float:
    """The smallest width ``w`` such that every measured width >= ``w`` keeps ``keep``.

    Requiring all larger widths to pass too (not only ``w`` itself) keeps a noisy dip at a
    larger width from being skipped over; width 1 (retention 1 by definition) always passes.
    """
    chosen = 1.0
    for w in sorted(cv, reverse=True):
        if cv[w] < keep:
            break
        chosen = w
    return chosen


def _time_widths(models: dict[float, torch.nn.Module], example: torch.Tensor, batch: int,
                 repeats: int, progress: bool, device: torch.device | None = None
                 ) -> dict[float, dict[str, float]]:
    """Median / min / max seconds per forward of every width, widths alternated per repeat
    (:func:`slimlib.measure.timed_rounds`).

    Models and inputs are moved to ``device`` (default: the example's) and, on CUDA, every
    timed forward ends with a synchronisation, so the times are the device's."""
    from slimlib.measure import timed_rounds

    device = torch.device(device) if device is not None else example.device
    models = {w: m.to(device) for w, m in models.items()}
    example = example.to(device)
    x1, xb = example[:1], example[:1].expand(batch, *example.shape[1:]).contiguous()
    calls = {(w, b): (lambda m=m, x=x: m(x)) for w, m in models.items()
             for b, x in ((1, x1), (batch, xb))}
    times = timed_rounds(calls, repeats=repeats, warmup=1, cuda=device.type == "cuda",
                         progress=progress, desc="timing widths")
    out = {}
    for w in models:
        lat, thr = times[(w, 1)], times[(w, batch)]
        out[w] = {"latency_ms": statistics.median(lat) * 1e3, "latency_min_ms": min(lat) * 1e3,
                  "latency_max_ms": max(lat) * 1e3,
                  "throughput_img_s": batch / statistics.median(thr),
                  "batch": batch, "repeats": repeats}
    return out


def _command(model: Any, data: Any, options: dict[str, Any]) -> str | None:
    """The CLI call that reproduces this diagnosis (``data`` as resolved: a registry name or
    an absolute folder path)."""
    if not isinstance(model, str) or not isinstance(data, str | os.PathLike):
        return None
    parts = ["python", "-m", "slimlib", "diagnose", "--model", model, "--data", str(data)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                parts.append(flag)
        elif value is None:
            continue
        elif isinstance(value, list | tuple):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _train_features(slimmed: dict[float, torch.nn.Module], train: Any, *, name: str,
                    spec: ModelSpec, data_name: str, device: torch.device, batch_size: int,
                    progress: bool, settings: Any) -> dict[float, np.ndarray]:
    """Training features of every slimmed width: the entries :func:`slimlib.sweep` cached,
    else extracted.

    The keys come from :func:`slimlib.features.feature_key` with the components the sweep
    keys its training features with (model name, the slimmed module's fingerprint, dataset
    name, split, data fingerprint, preprocessing, precision), so a width the sweep extracted
    is read back, not computed again. Everything but the slimmed module is fingerprinted once.
    """
    same = dict(model=name, dataset=data_name, split="train",
                data=_features.data_fingerprint(train),
                preprocessing=_features.preprocessing_id(spec),
                precision=_features.precision(device))
    feats = {}
    for width, module in slimmed.items():
        key = _features.feature_key(weights=_features.module_fingerprint(module), **same)
        feats[width], _ = _features.extract(module, train, batch_size=batch_size,
                                            device=device, cache_key=key, progress=progress,
                                            name=name, width=width, settings=settings)
    return feats


#: The files of a report folder (:func:`diagnose` refuses a folder holding any of them unless
#: ``overwrite=True``).
REPORT_FILES: tuple[str, ...] = ("report.json", "report.html", "report.md", "curve.png",
                                 "sweep.csv", "sensitivity.png")


def _weights_argument(weights: Any) -> Any:
    """A weights file as an absolute path; ``None``, ``"random"`` and ``"pretrained"`` as
    given."""
    if isinstance(weights, str | os.PathLike) and weights not in ("random", "pretrained"):
        return str(Path(weights).expanduser().resolve())
    return weights


def _data_argument(data: Any) -> Any:
    """``data`` as the reproduce command needs it (after :func:`resolve_data` accepted it): a
    registry name unchanged, a folder as an absolute path."""
    if not isinstance(data, str | os.PathLike):
        return data
    from slimlib import data as _data
    from slimlib.diagnosis._inputs import REGISTRY_PREFIX

    text = os.fspath(data)
    if text.startswith(REGISTRY_PREFIX) or (text in _data.list_datasets()
                                            and not Path(text).exists()):
        return text
    return str(Path(text).expanduser().resolve())


def _check_out(out: Path, *, overwrite: bool) -> None:
    """Refuse a report folder that is a file, or that holds a report (unless ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; pass a folder for the report")
    if not overwrite:
        found = [n for n in REPORT_FILES if (out / n).exists()]
        if found:
            raise ValueError(f"{out} already holds a report ({', '.join(found)}); pass "
                             "overwrite=True (CLI --overwrite) to replace it, or another out=")


@contextlib.contextmanager
def _report_folder(out: Path, *, overwrite: bool) -> Iterator[None]:
    """Create and lock the report folder ``out`` for one diagnosis.

    The lock (``out/.report.json.lock``) is taken without waiting: a second diagnosis writing
    to the same folder is refused. Under the lock the folder is checked again (a run that
    finished meanwhile left its report) and, with ``overwrite``, its report files are deleted.
    """
    from filelock import Timeout

    from slimlib import _io

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _io.file_lock(out / "report.json")
        lock.acquire(timeout=0)
    except Timeout:
        raise ValueError(f"another diagnosis is writing to {out} (its lock "
                         f"{out / '.report.json.lock'} is held); wait for it to finish or pass "
                         "another out=") from None
    except OSError as err:
        raise ValueError(f"cannot write the report folder {out} ({err.strerror or err}); pass "
                         "out= a folder you can write") from None
    try:
        _check_out(out, overwrite=overwrite)
        if overwrite:
            for name in REPORT_FILES:
                (out / name).unlink(missing_ok=True)
        yield
    except BaseException:
        if created and not any(p.name != ".report.json.lock" for p in out.iterdir()):
            lock.release()
            with contextlib.suppress(OSError):
                (out / ".report.json.lock").unlink()
                out.rmdir()
        raise
    finally:
        if lock.is_locked:
            lock.release()


def _checked_widths(widths: Sequence[float]) -> list[float]:
    """The widths of a diagnosis: valid, rounded, deduplicated, 1.0 added, largest first."""
    widths = sorted({round(w, 9) for w in check_widths(widths)} | {1.0}, reverse=True)
    if len(widths) < 2:
        raise ValueError("widths must hold at least one width below 1")
    return widths


def _check_numbers(*, keep: float, folds: int, limit_per_class: int | None,
                   image_size: int | None, **positive: int) -> None:
    """Refuse a ``keep`` outside (0, 1], ``folds`` < 2 and non-positive counts."""
    if not 0.0 < float(keep) <= 1.0:
        raise ValueError(f"keep must be a retention in (0, 1]; got {keep!r}")
    check_int(folds, "folds", low=2)
    for label, value in positive.items():
        check_int(value, label)
    for label, value in (("limit_per_class", limit_per_class), ("image_size", image_size)):
        if value is not None:
            check_int(value, label)


def _model_for(model: Any, data_name: str, train: Any, *, weights: Any, image_size: int | None,
               seed: int, settings: Any) -> ResolvedModel:
    """``model`` resolved for the training images (:func:`resolve_model`), refused with a clear
    error when their bands cannot feed it.

    Data that are not 8-bit RGB get normalisation statistics of their own training split
    (8-bit RGB keeps ImageNet's, or timm's own).
    """
    from slimlib.data import band_plan

    mean = std = None
    if tuple(train.bands) != ("R", "G", "B") or train.units != "rgb01":
        flat = train.images.transpose(0, 1).reshape(train.images.shape[1], -1)
        mean = tuple(float(v) for v in flat.mean(1))
        std = tuple(max(float(v), 1e-6) for v in flat.std(1))
    resolved = resolve_model(model, weights=weights, bands=train.bands, units=train.units,
                             mean=mean, std=std, input_size=image_size, seed=seed,
                             settings=settings)
    spec = resolved.encoder.spec
    try:
        band_plan(train.bands, train.units, spec)
    except ValueError as err:
        raise ValueError(f"data {data_name!r} (bands {train.bands}, {train.units}) cannot feed "
                         f"model {spec.name!r} (bands {spec.bands}): {err}. Pass "
                         "bands= matching the model") from err
    return resolved


def _sweep_models(enc: torch.nn.Module, *, control: bool, seed: int,
                  other: torch.nn.Module | None = None) -> dict[str, torch.nn.Module]:
    """The models the sweep runs: ``enc``, with ``control`` its random-init control, and the
    compared checkpoint ``other`` when given."""
    models = {enc.spec.name: enc}
    if control:
        ctrl = random_init(enc, seed=seed + 1)
        ctrl.spec = enc.spec
        models[f"{enc.spec.name} [random init]"] = ctrl
    if other is not None:
        models[compare_name(enc.spec.name)] = other
    return models


def _check_same_architecture(enc: torch.nn.Module, other: torch.nn.Module, compare: Any) -> None:
    """Refuse a compared checkpoint whose parameters differ in name or shape from the model's."""
    mine = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in other.state_dict().items()}
    if mine != theirs:
        diff = sorted(set(mine.items()) ^ set(theirs.items()))[:3]
        raise ValueError(f"compare={compare!r} is not the same architecture as the model (first "
                         f"differing parameters: {diff}); compare two checkpoints of one "
                         "architecture")


def _example_input(enc: torch.nn.Module) -> torch.Tensor:
    """One zero image ``(1, C, S, S)`` of the size ``enc`` is fed."""
    spec = enc.spec
    return torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)


def _compute_floor(enc: torch.nn.Module) -> tuple[int, float]:
    """FLOPs of ``enc`` and the compute floor: relative compute at d_k' = d_h' = 1."""
    from slimlib.measure import flops

    example = _example_input(enc)
    full = flops(enc, example)
    return full, flops(slim(enc, 1e-9), example) / full


def _curves(ret: Any, name: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Per ``"model/<protocol>"`` and ``"control/<protocol>"``: the retention curve (largest
    width first) and its slimmability score, from :func:`slimlib.sweeping.retention`."""
    curves: dict[str, list[dict[str, Any]]] = {}
    scores: dict[str, float] = {}
    for (mname, protocol), grp in ret.groupby(["model", "protocol"], sort=False):
        grp = grp.sort_values("width", ascending=False)
        key = f"{role(mname, name)}/{protocol}"
        curves[key] = [{"width": float(r.width), "rel_compute": float(r.rel_compute),
                        "score": float(r.mean), "retention": float(r.retention)}
                       for r in grp.itertuples()]
        scores[key] = slimmability_score(grp["rel_compute"], grp["retention"])
    return curves, scores


def _rows(curves: dict[str, list[dict[str, Any]]], cv: dict[float, float],
          timing: dict[float, dict[str, float]]) -> list[dict[str, Any]]:
    """The report's rows: the model's k-NN curve with the CV retention, the control's test
    retention at the same width and the timing of every width."""
    rows = []
    for c in curves["model/knn"]:
        w = c["width"]
        ctrl_c = next((x for x in curves.get("control/knn", []) if x["width"] == w), None)
        rows.append({**c, "cv_retention": cv[w],
                     "control_retention": ctrl_c["retention"] if ctrl_c else None,
                     **timing.get(w, {})})
    return rows


def diagnose(
    model: Any,
    data: Any,
    *,
    out: str | os.PathLike = "slimreport",
    weights: str | os.PathLike | None = None,
    bands: Sequence[str] | None = None,
    widths: Sequence[float] = DEFAULT_WIDTHS,
    protocols: Sequence[str] = ("knn",),
    keep: float = 0.95,
    folds: int = 5,
    limit_per_class: int | None = None,
    image_size: int | None = None,
    control: bool = True,
    latency: bool = True,
    latency_batch: int = 8,
    latency_repeats: int = 5,
    batch_size: int = 64,
    device: str | None = None,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    scale: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    settings: Any = None,
    sensitivity: bool = True,
    sensitivity_widths: Sequence[float] = SENSITIVITY_WIDTHS,
    sensitivity_train_per_class: int | None = 100,
    align: int | None = DEFAULT_ALIGN,
    compare: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Diagnose how far ``model`` can be slimmed on ``data`` and write a report.

    Args:
        model: registry name, timm name, ``"module:function"`` returning an ``nn.Module``, or
            an ``nn.Module``.
        data: registry dataset name, an ``ImageFolder``-layout folder, or a ``(train, test)``
            pair of :class:`~slimlib.specs.ImageDataset`.
        out: report folder (``report.html``, ``report.md``, ``report.json``, ``curve.png``,
            ``sweep.csv``). A folder that already holds any of these is refused unless
            ``overwrite=True`` (which deletes them first); a folder another diagnosis is
            writing to is refused (locked).
        weights: ``None`` (registry: published; timm: random init; function: as built),
            ``"random"``, ``"pretrained"`` or a weights file.
        bands: band names to use (registry data: selects channels; folder of TIFFs: names the
            channels; 8-bit images are always R, G, B).
        widths: width factors; 1.0 is added if missing.
        protocols: ``("knn",)`` or ``("knn", "linear")``.
        keep: target retention for the recommended width (0.95 = 95 %).
        folds: k of the k-fold cross-validation on the training split.
        limit_per_class: at most this many images per class and split.
        image_size: input side fed to the model (``None``: the model's own).
        control: also run the random-init control of the same architecture.
        latency, latency_batch, latency_repeats: time every width at batch 1 and
            ``latency_batch`` (alternated rounds) on this machine.
        batch_size, device: feature extraction settings.
        seed: seed of the random weights, the control and the CV folds.
        data_root: data root for registry datasets.
        scale: how folder images that are not 8-bit become model units
            (:data:`slimlib._imageio.SCALES`: ``"reflectance10000"``, ``"uint16max"``,
            ``"stored"``; ``None``: from the data type and the band names).
        overwrite: replace the report already in ``out``.
        settings: data root, cache and weights (:class:`slimlib.settings.Settings`; ``None``:
            :func:`slimlib.settings.current`).
        progress: tqdm progress bars.
        sensitivity, sensitivity_widths: add which blocks tolerate narrowing (each block's
            attention / FFN slimmed alone to each of ``sensitivity_widths``) and what slimming
            did at the recommended width (:func:`slimlib.diagnosis.sensitivity_section`;
            ``result["sensitivity"]``, ``sensitivity.png``).
        sensitivity_train_per_class: the sensitivity's k-NN probe is fitted on at most this
            many training images per class (stratified, seeded; ``None`` or 0: all) and scores
            every test image: each of its depth × 2 × widths variants is a near-full-cost
            feature pass, so this bounds its cost (Galileo-nano on EuroSAT: 1,000 instead of
            6,400 training images per pass).
        align: at the recommended width, also try ``slim(model, s, align=align)`` (kept dims
            rounded up to a multiple of ``align``) and recommend it when its CV retention still
            reaches ``keep`` and it ran faster in every timed round here
            (:mod:`slimlib.diagnosis._aligned`; ``result["aligned"]``,
            ``result["recommended_align"]``). ``None`` or 0: off.
        compare: weights of a second checkpoint of the **same architecture** (``"random"``,
            ``"pretrained"`` or a weights file, as ``weights``): it goes through the same sweep
            on the same images and widths, and the report shows its scores and retention
            minus the model's with paired intervals (``result["evidence"]["widths"][s]``:
            ``compare_score``, ``compare_minus_model``, ``compare_minus_model_retention``;
            ``result["compare_cv"]``, ``result["compare_recommended_width"]``).

    Returns:
        The report as a dict (what ``report.json`` holds); ``["paths"]`` lists the files.

    Raises:
        ValueError / TypeError / FileNotFoundError: unusable model, data, bands or options
        (the message says what to pass instead).
    """
    from slimlib.diagnosis import _report
    from slimlib.settings import or_current
    from slimlib.sweeping import retention, sweep

    widths = _checked_widths(widths)
    _check_numbers(keep=keep, folds=folds, batch_size=batch_size, latency_batch=latency_batch,
                   latency_repeats=latency_repeats, limit_per_class=limit_per_class,
                   image_size=image_size)
    sensitivity_widths = check_widths(sensitivity_widths, "sensitivity_widths")
    align = None if align in (None, 0) else check_int(align, "align")
    sensitivity_train_per_class = (None if sensitivity_train_per_class in (None, 0) else
                                   check_int(sensitivity_train_per_class,
                                             "sensitivity_train_per_class"))
    device_t = _features.resolve_device(device)
    out = Path(out).expanduser().resolve()
    _check_out(out, overwrite=overwrite)
    weights, compare = (_weights_argument(w) for w in (weights, compare))
    protocols = tuple([protocols] if isinstance(protocols, str) else protocols)
    if "knn" not in protocols:
        raise ValueError("protocols must include 'knn' (the report and the CV use it)")
    settings = or_current(settings)
    started = time.perf_counter()
    bands_t = tuple(bands) if bands is not None else None
    data_name, train, test = resolve_data(data, bands=bands_t, limit_per_class=limit_per_class,
                                          seed=seed, data_root=data_root, progress=progress,
                                          scale=scale, settings=settings)
    data_arg = _data_argument(data)
    check_data(train, test, folds=folds, k=_K)
    resolved = _model_for(model, data_name, train, weights=weights, image_size=image_size,
                          seed=seed, settings=settings)
    enc = resolved.encoder
    name = enc.spec.name
    other = None
    if compare is not None:
        import copy

        other = _model_for(copy.deepcopy(model) if isinstance(model, torch.nn.Module) else model,
                           data_name, train, weights=compare, image_size=image_size, seed=seed,
                           settings=settings)
        _check_same_architecture(enc, other.encoder, compare)
    # every width slimmed once, for the CV's training features and the timing (the sweep slims
    # its own); slim raises a TypeError naming any unsupported block, before any work
    slimmed = {w: slim(enc, w) for w in widths}
    models = _sweep_models(enc, control=control, seed=seed,
                           other=other.encoder if other is not None else None)
    with _report_folder(out, overwrite=overwrite):
        table = sweep(models, {data_name: (train, test)}, widths=widths, seeds=(0,),
                      protocols=protocols, metrics=False, out=out / "sweep.csv",
                      batch_size=batch_size, device=device_t, progress=progress, pretrained=False,
                      settings=settings)
        train_feats = _train_features(slimmed, train, name=name, spec=enc.spec,
                                      data_name=data_name, device=device_t,
                                      batch_size=batch_size, progress=progress, settings=settings)
        train_labels = train.labels.numpy()
        cv = cv_retention(train_feats, train_labels, folds=folds, seed=seed)
        chosen = recommend_width(cv, keep)
        full_flops, floor = _compute_floor(enc)
        timing = {}
        if latency:
            timing = _time_widths(slimmed, _example_input(enc), latency_batch, latency_repeats,
                                  progress, device_t)
        curves, scores = _curves(retention(table), name)
        rows = _rows(curves, cv, timing)
        test_ret = {c["width"]: c["retention"] for c in curves["model/knn"]}
        options = {"checkpoint": weights, "bands": bands_t, "widths": widths, "protocols": protocols,
                   "keep": keep, "folds": folds, "limit_per_class": limit_per_class,
                   "image_size": image_size, "no_control": not control, "no_latency": not latency,
                   "latency_batch": latency_batch, "latency_repeats": latency_repeats,
                   "batch_size": batch_size, "device": str(device_t) if device is not None else None,
                   "seed": seed, "scale": scale, "align": align or 0, "compare": compare,
                   "out": str(out)}
        options.update(no_sensitivity=not sensitivity,
                       sensitivity_widths=sensitivity_widths if sensitivity else None,
                       sensitivity_train_per_class=(sensitivity_train_per_class or 0)
                       if sensitivity else None)
        result = {
            "model": name, "model_kind": resolved.kind, "weights": resolved.weights,
            "random_weights": resolved.random_weights, "architecture": enc.spec.architecture,
            "dataset": data_name, "bands": list(train.bands), "units": train.units,
            "n_train": len(train), "n_test": len(test), "classes": list(train.classes),
            "input_size": enc.spec.input_size, "metric": str(table["metric"].iloc[0]),
            "synthetic": bool(train.synthetic or test.synthetic),
            "gflops_full": full_flops / 1e9, "compute_floor": floor,
            "score": scores.get("model/knn"), "control_score": scores.get("control/knn"),
            "scores": scores, "keep": keep, "folds": folds,
            "recommended_width": chosen, "recommended_cv_retention": cv[chosen],
            "recommended_test_retention": test_ret[chosen],
            "recommended_rel_compute": next(c["rel_compute"] for c in rows if c["width"] == chosen),
            "rows": rows, "curves": curves, "threads": torch.get_num_threads(),
            "device": str(device_t), "torch": torch.__version__,
            "data": data_arg if isinstance(data_arg, str) else None, "out": str(out),
            "command": _command(model, data_arg, options), "runtime_s": time.perf_counter() - started,
        }
        from slimlib.diagnosis import _answer

        if other is not None:
            result["compare_model"] = compare_name(name)
            result["compare_weights"] = other.weights
            other_feats = _train_features(
                {w: slim(other.encoder, w) for w in widths}, train, name=compare_name(name),
                spec=enc.spec, data_name=data_name, device=device_t, batch_size=batch_size,
                progress=progress, settings=settings)
            result["compare_cv"] = cv_retention(other_feats, train_labels, folds=folds, seed=seed)
            result["compare_recommended_width"] = recommend_width(result["compare_cv"], keep)
        result["evidence"] = _answer.evidence(result, table, seed=seed)
        result["recommended_align"] = None
        if align is not None and chosen < 1.0:
            full_train = train_feats[1.0]
            result["aligned"] = aligned_check(
                enc, chosen, align=align, unaligned=slimmed[chosen],
                example=_example_input(enc), full_flops=full_flops, train=train, test=test,
                cv_retention_of=lambda x: cv_retention({1.0: full_train, chosen: x},
                                                       train_labels, folds=folds,
                                                       seed=seed)[chosen],
                keep=keep, name=name, data_name=data_name, batch_size=batch_size,
                device=device_t, latency=latency, latency_batch=latency_batch,
                latency_repeats=latency_repeats, seed=seed, progress=progress,
                settings=settings)
            if result["aligned"]["recommended"]:
                result["recommended_align"] = align
        if sensitivity:  # which blocks tolerate narrowing, and what slimming did
            result["sensitivity"] = sensitivity_section(
                enc, subset_per_class(train, sensitivity_train_per_class, seed), test,
                widths=sensitivity_widths,
                verify_width=chosen if chosen < 1 else max(sensitivity_widths),
                verify_align=result["recommended_align"],
                verify_why=("the recommended width" + (
                    f", aligned to multiples of {result['recommended_align']}"
                    if result["recommended_align"] else "")) if chosen < 1 else
                "the recommended width is 1; shown at the largest sensitivity width",
                name=name, data_name=data_name, batch_size=batch_size, device=device_t,
                seed=seed, progress=progress, settings=settings)
        result["runtime_s"] = time.perf_counter() - started
        result["paths"] = _report.write_report(result, out)
        return result
