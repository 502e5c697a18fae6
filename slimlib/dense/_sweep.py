"""Segmentation and change-detection probes on frozen (slimmed) encoders, and their sweeps.

The paper evaluates m-cashew-plant and m-SA-crop-type (GEO-Bench segmentation, mIoU) and OSCD
(change detection, mIoU over change and no-change) with "a light SegFormer-style multi-scale
head on frozen features, one run per width". Its head design, layers, epochs and optimiser
are not published; slimlib's choices are in :mod:`slimlib.dense._head` and docs/dense.md.

Public API::

    availability(root=None) -> DataFrame            # is each dense task's data here? why not?
    probe(encoder, train, test, *, spec=None, seed=0, ...) -> dict   # one fit + mIoU
    sweep_dense(model, train, test, *, widths, seed=0, ...) -> DataFrame  # sweep-table rows
    confusion_matrix(pred, target, num_classes) / iou_per_class(conf) / miou(conf)
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimlib._validation import check_choice, check_splits_of_one_task, check_widths
from slimlib.data import IGNORE, DenseDataset
from slimlib.dense._head import FUSIONS, combine_dates, predict, token_maps, train_head
from slimlib.specs import ModelSpec, spec_of

__all__ = ["DENSE_TASKS", "availability", "confusion_matrix", "iou_per_class", "miou", "probe",
           "dense_features", "sweep_dense", "DenseDataset", "IGNORE"]

#: The paper's dense tasks: registry name -> task, protocol and metric as in the sweep table.
DENSE_TASKS: dict[str, dict[str, str]] = {
    "m-cashew-plant": {"task": "segmentation", "protocol": "segmentation_probe",
                       "metric": "miou", "splits": "train/test"},
    "m-SA-crop-type": {"task": "segmentation", "protocol": "segmentation_probe",
                       "metric": "miou", "splits": "train/test"},
    "oscd": {"task": "change_detection", "protocol": "change_detection_probe",
             "metric": "miou", "splits": "train/test"},
}


# ----------------------------------------------------------------------------- metrics


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, *,
                     ignore_index: int = IGNORE) -> torch.Tensor:
    """``(K, K)`` int64 counts, rows = true class, columns = predicted; ``ignore_index`` skipped."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= num_classes or int(p.min()) < 0
                   or int(p.max()) >= num_classes):
        raise ValueError(f"labels outside [0, {num_classes}) (other than ignore_index="
                         f"{ignore_index})")
    return torch.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def iou_per_class(conf: torch.Tensor) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN where the class is neither present nor predicted."""
    conf = torch.as_tensor(conf).double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    return iou.numpy()


def miou(conf: torch.Tensor) -> float:
    """Mean IoU over the classes with a non-empty union (dataset-level confusion matrix).

    For OSCD the two classes are no-change and change, the paper's "mIoU (change & no-change)".
    """
    iou = iou_per_class(conf)
    if np.isnan(iou).all():
        raise ValueError("no labelled pixel: mIoU is undefined")
    return float(np.nanmean(iou))


# ----------------------------------------------------------------------------- features


def _prepared(images: torch.Tensor, plan: Any, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, images.shape[0], batch_size):
        yield plan.apply(images[start:start + batch_size])


def dense_features(encoder: nn.Module, data: DenseDataset, *, spec: ModelSpec | None = None,
                   levels: Sequence[int] | None = None, batch_size: int = 32,
                   fusion: str = "concat", fill_missing: Sequence[str] = ("B10",),
                   device: str | torch.device | None = None, progress: bool = False
                   ) -> torch.Tensor:
    """Frozen patch-token maps ``(N, L, D', h, w)`` of ``data`` (both dates combined by
    ``fusion`` for change detection; ``D' = 2D`` for ``"concat"``).

    Images are band-matched, resized to ``spec.input_size`` and normalised as for the
    classification sweeps (:func:`slimlib.data.band_plan`); bands in ``fill_missing`` that the
    data lack (B10 for the GEO-Bench segmentation tasks) are filled with their mean.
    """
    from slimlib.data import band_plan
    from slimlib.features import resolve_device

    if not isinstance(data, DenseDataset):
        raise TypeError(f"data must be a DenseDataset (slimlib.data.load of a dense task); "
                        f"got {type(data).__name__}")
    check_choice(fusion, FUSIONS, "fusion")
    spec = spec_of(encoder, spec, required=True)
    plan = band_plan(data.bands, data.units, spec,
                     fill_missing=[b for b in fill_missing if b not in data.bands])
    for note in plan.notes:
        if note not in data.notes:
            data.notes.append(note)
    dev = resolve_device(device)
    total = math.ceil(len(data) / batch_size)

    def run(images: torch.Tensor) -> torch.Tensor:
        return token_maps(encoder, _prepared(images, plan, batch_size), levels=levels,
                          device=dev, progress=progress, total=total)

    if data.task == "segmentation":
        return run(data.images)
    return combine_dates(run(data.images[:, 0]), run(data.images[:, 1]), fusion)


def _masks(data: DenseDataset, ignore_class: int | None) -> torch.Tensor:
    if ignore_class is None:
        return data.masks
    if not 0 <= int(ignore_class) < data.num_classes:
        raise ValueError(f"ignore_class must be a class index of {data.name} "
                         f"(0..{data.num_classes - 1}) or None; got {ignore_class!r}")
    masks = data.masks.clone()
    masks[masks == int(ignore_class)] = IGNORE
    return masks


def _fit(train_maps: torch.Tensor, test_maps: torch.Tensor, train: DenseDataset,
         test: DenseDataset, *, seed: int, ignore_class: int | None, epochs: int,
         batch_size: int, lr: float, dim: int, device: torch.device, progress: bool
         ) -> dict[str, Any]:
    head = train_head(train_maps, _masks(train, ignore_class), train.num_classes, seed=seed,
                      epochs=epochs, batch_size=batch_size, lr=lr, dim=dim, device=device,
                      progress=progress)
    target = _masks(test, ignore_class)
    pred = predict(head, test_maps, tuple(target.shape[-2:]), device=device)
    conf = confusion_matrix(pred, target, test.num_classes)
    iou = iou_per_class(conf)
    return {"value": miou(conf), "iou": dict(zip(test.classes, iou.tolist(), strict=True)),
            "confusion": conf, "n_train": len(train), "n_test": len(test)}


def probe(encoder: nn.Module, train: DenseDataset, test: DenseDataset, *,
          spec: ModelSpec | None = None, seed: int = 0, levels: Sequence[int] | None = None,
          epochs: int = 20, batch_size: int = 16, lr: float = 1e-3, dim: int = 128,
          fusion: str = "concat", ignore_class: int | None = None,
          device: str | torch.device | None = None, progress: bool = False) -> dict[str, Any]:
    """Train the dense head on ``train``'s frozen features and score mIoU on ``test``.

    Args:
        encoder: frozen encoder (a ``slimlib.models.load`` encoder, or a timm ViT with
            ``spec=``); it is not trained.
        seed: seeds the head's initialisation and batch order.
        levels: block indices whose patch tokens feed the head (default: four, evenly spaced).
        epochs, batch_size, lr, dim: head schedule (AdamW, cosine decay) and width.
        fusion: change detection only: ``"concat"`` or ``"diff"`` of the two dates' tokens.
        ignore_class: a class index left out of training and scoring (e.g. 0, "no data");
            default ``None`` scores every class.

    Returns:
        ``{"value": mIoU, "iou": {class: IoU}, "confusion": (K, K), "n_train", "n_test"}``.
    """
    from slimlib.features import resolve_device

    check_splits_of_one_task(train, test, DenseDataset)
    dev = resolve_device(device)
    kw = {"spec": spec, "levels": levels, "fusion": fusion, "device": dev, "progress": progress}
    return _fit(dense_features(encoder, train, **kw), dense_features(encoder, test, **kw),
                train, test, seed=seed, ignore_class=ignore_class, epochs=epochs,
                batch_size=batch_size, lr=lr, dim=dim, device=dev, progress=progress)


# ----------------------------------------------------------------------------- sweep


def _data_fp(*datasets: DenseDataset) -> str:
    h = hashlib.blake2b(digest_size=6)
    for d in datasets:
        h.update(f"{d.name}/{d.split}/{d.bands}/{d.classes}".encode())
        for t in (d.images, d.masks):
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def sweep_dense(model: nn.Module, train: DenseDataset, test: DenseDataset, *,
                widths: Sequence[float], seed: int = 0, model_name: str | None = None,
                spec: ModelSpec | None = None, parts: Sequence[str] = ("attn", "ffn"),
                order: str = "first", levels: Sequence[int] | None = None, epochs: int = 20,
                batch_size: int = 16, lr: float = 1e-3, dim: int = 128, fusion: str = "concat",
                ignore_class: int | None = None, device: str | torch.device | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Slim ``model`` to each width, probe it on the dense task, one row per width.

    One run per width (the paper's protocol for the dense tasks), seeded by ``seed``. The rows
    have the columns of :data:`slimlib.sweeping.COLUMNS` (``protocol`` =
    ``segmentation_probe`` or ``change_detection_probe``, ``metric`` = ``miou``), so
    :func:`slimlib.sweeping.retention` and the book treat them like the classification sweeps;
    ``rel_compute`` is the encoder's FLOPs(s) / FLOPs(1) on one input (the head is excluded).
    """
    from tqdm.auto import tqdm

    from slimlib.features import module_fingerprint, resolve_device
    from slimlib.measure import flops, params
    from slimlib.slimming import describe, slim
    from slimlib.sweeping import COLUMNS

    check_splits_of_one_task(train, test, DenseDataset)
    widths = check_widths(widths)
    spec = spec_of(model, spec, required=True)
    dev = resolve_device(device)
    name = model_name or spec.name
    protocol = "segmentation_probe" if train.task == "segmentation" else "change_detection_probe"
    example = torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
    full_flops = flops(model, example)
    base = {"model": name, "model_fp": module_fingerprint(model)[:12], "dataset": train.name,
            "data_fp": _data_fp(train, test), "synthetic": bool(train.synthetic),
            "protocol": protocol, "metric": "miou", "seed": int(seed), "parts": "+".join(parts),
            "order": order, "scale": "slimmed", "train_fraction": 1.0}
    notes = list(dict.fromkeys(train.notes + test.notes))
    rows = []
    for width in tqdm(widths, desc=f"{name} on {train.name}", disable=not progress):
        start = time.perf_counter()
        slimmed = slim(model, width, parts=parts, order=order, seed=seed)
        info = describe(slimmed)
        dims = ["/".join(map(str, dict.fromkeys(int(v) for v in info[c]))) for c in ("d_k", "d_h")]
        n_flops = flops(slimmed, example)
        kw = {"spec": spec, "levels": levels, "fusion": fusion, "device": dev}
        train_maps, test_maps = dense_features(slimmed, train, **kw), dense_features(slimmed, test,
                                                                                      **kw)
        extract_s = time.perf_counter() - start
        fit = _fit(train_maps, test_maps, train, test, seed=seed, ignore_class=ignore_class,
                   epochs=epochs, batch_size=batch_size, lr=lr, dim=dim, device=dev,
                   progress=False)
        head = (f"dense head: levels={levels or 'default'}, dim={dim}, epochs={epochs}, lr={lr}, "
                f"batch={batch_size}, fusion={fusion if train.task != 'segmentation' else '-'}, "
                f"ignore_class={ignore_class}")
        rows.append({**base, "width": float(width), "d_k": dims[0], "d_h": dims[1],
                     "flops": int(n_flops), "rel_compute": n_flops / full_flops,
                     "params": params(slimmed), "value": fit["value"],
                     "runtime_s": time.perf_counter() - start, "extract_s": extract_s,
                     "n_train": fit["n_train"], "n_test": fit["n_test"],
                     "notes": "; ".join([*notes, head])})
    return pd.DataFrame(rows, columns=list(COLUMNS))


# ----------------------------------------------------------------------------- availability


def availability(root: str | os.PathLike | None = None, *,
                 settings: Any = None) -> pd.DataFrame:
    """Whether each dense task's data can be read, and why not.

    ``root`` is a data root: GEO-Bench segmentation tasks are looked for under
    ``<root>/segmentation_v1.0/`` and ``<root>/geobench/segmentation_v1.0/``, OSCD under
    ``<root>/oscd/`` and ``<root>``. With ``root=None`` the GEO-Bench settings
    (``$GEO_BENCH_DIR``, ``$SLIMLIB_DATA/geobench``, cache) and ``$SLIMLIB_DATA/oscd`` are used,
    from ``settings`` (:class:`slimlib.settings.Settings`; ``None``:
    :func:`slimlib.settings.current`).

    Returns:
        one row per task: ``dataset``, ``task``, ``metric``, ``available`` (bool),
        ``where`` (the folder found, or ``""``) and ``reason`` (why not, with how to get it).
    """
    from slimlib.data import geobench_seg, oscd
    from slimlib.settings import or_current

    if root is None:
        settings = or_current(settings)
    base = Path(root).expanduser() if root is not None else settings.data
    rows = []
    for name, meta in DENSE_TASKS.items():
        where, reason = "", ""
        if name == "oscd":
            cands = [base / "oscd", base] if base is not None else []
            why = [(c, oscd.problem(c, s)) for c in cands for s in oscd.SPLITS]
            ok = [c for c in cands if all(oscd.problem(c, s) is None for s in oscd.SPLITS)]
            if ok:
                where = str(ok[0])
            else:
                reasons = dict.fromkeys(w for _, w in why if w) or {oscd.problem(None): None}
                reason = "; ".join(reasons) + ". " + oscd.how_to_get()
        else:
            cands = [base, base / "geobench"] if root is not None else [None]
            found = [geobench_seg.find_task_dir(name, c, settings) for c in cands]
            found = [f for f in found if f is not None]
            if found:
                where = str(found[0])
            else:
                reason = (geobench_seg.problem(name, None, settings) if root is None else
                          f"no segmentation_v1.0/{name}/ (with *_partition.json) under "
                          f"{' or '.join(str(c) for c in cands)}")
                reason += ". " + geobench_seg.how_to_get(name)
        rows.append({"dataset": name, "task": meta["task"], "metric": meta["metric"],
                     "available": bool(where), "where": where, "reason": reason})
    return pd.DataFrame(rows)
