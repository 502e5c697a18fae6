"""Slimmability during pretraining (chapter 10; the paper's training-dynamics appendix).

The embedded tiny models keep encoder snapshots while they pretrain
(:data:`slimlib.train.embedded.SNAPSHOT_FRACTIONS` of the schedule, step 0 being the run's own
random init, written by ``pretrain(snapshot_steps=...)``). :func:`snapshot_encoders` loads
them, retraining the snapshots once (deterministically, the same run as the checkpoint) when
a checkpoint was cached before snapshots were kept. :func:`dynamics_rows` runs every snapshot
through the same sweep as the book's other curves, and :func:`width_spread` summarises how
far the smallest width lags behind full width at each snapshot.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["snapshot_encoders", "snapshot_label", "dynamics_rows", "width_spread",
           "spread_change", "gap_change_bootstrap"]


def snapshot_label(name: str, step: int) -> str:
    """The sweep-table name of ``name``'s snapshot after ``step`` steps."""
    return f"{name} @ step {int(step)}"


def _retrain_snapshots(name: str, settings: Any) -> None:
    """Rerun ``name``'s pretraining with snapshots into its snapshot folder (used only when
    the cached checkpoint predates snapshots; same config and seed as the checkpoint)."""
    from slimlib.train import embedded
    from slimlib.train.loop import SNAPSHOTS, pretrain

    target = embedded.snapshot_dir(name, settings=settings)
    run_dir = target.with_suffix(".run")
    fingerprint, _ = embedded._fingerprint(name, settings.data)
    pretrain(embedded.EMBEDDED_CONFIGS[name],
             embedded.training_data(name, settings=settings), run_dir,
             resume=True, progress=False, fingerprint=fingerprint,
             snapshot_steps=embedded.snapshot_steps(name))
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    (run_dir / SNAPSHOTS).rename(target)
    shutil.rmtree(run_dir, ignore_errors=True)


def snapshot_encoders(name: str, *, pretrained: bool = True,
                      settings: Any = None) -> dict[int, Any]:
    """``{step: Encoder}`` of every snapshot of embedded model ``name`` (``.spec`` set).

    With ``pretrained=False`` (the smoke profile) no training happens: the dict holds only
    step 0, the random init. ``settings`` (:class:`slimlib.settings.Settings`; ``None``:
    :func:`slimlib.settings.current`) says where the data root and the checkpoints are.
    """
    import torch

    from slimlib.settings import or_current
    from slimlib.train import embedded

    if not pretrained:
        return {0: embedded.build_encoder(name)}
    settings = or_current(settings)
    embedded.pretrained_encoder(name, progress=False, settings=settings)  # and its snapshots
    paths = embedded.snapshot_paths(name, settings=settings)
    if len(paths) < len(embedded.snapshot_steps(name)):
        _retrain_snapshots(name, settings)
        paths = embedded.snapshot_paths(name, settings=settings)
    out = {}
    for step, path in sorted(paths.items()):
        encoder = embedded.build_encoder(name)
        encoder.load_state_dict(torch.load(path, map_location="cpu",
                                           weights_only=False)["state_dict"])
        out[step] = encoder.eval()
    return out


def dynamics_rows(profile: Any, names: Iterable[str], dataset: str, *,
                  widths: Iterable[float], table: str = "robustness_dynamics.csv"
                  ) -> pd.DataFrame:
    """k-NN sweep rows of every snapshot of every model ``names`` on ``dataset`` (the
    profile's subsets and seeds), with columns ``base`` (model) and ``step`` added."""
    from slimlib.book import sweep_for
    from slimlib.book.profiles import settings_of
    from slimlib.train import embedded

    names = list(names)
    settings = settings_of(profile)  # the profile's data root is folded into its settings
    if profile.pretrained:  # a standalone cold run: train the missing ones two at a time
        embedded.pretrain_missing(names, processes=2, settings=settings)
    parts = []
    for name in names:
        encoders = snapshot_encoders(name, pretrained=profile.pretrained, settings=settings)
        labelled = {snapshot_label(name, s): e for s, e in encoders.items()}
        rows = sweep_for(profile, labelled, [dataset], widths=list(widths), protocols=["knn"],
                         metrics=False, table=table)
        steps = {snapshot_label(name, s): s for s in encoders}
        parts.append(rows.assign(base=name, step=rows["model"].map(steps)))
    return pd.concat(parts, ignore_index=True)


def width_spread(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and snapshot: accuracy at full width, at the smallest width, their gap
    (``spread``) and its SE (binomial SEs of both accuracies, seed means).

    Returns ``base, step, full, smallest, spread, se``.
    """
    from slimlib.sweeping.controls import binomial_se

    means = rows.groupby(["base", "step", "width"])["value"].mean().reset_index()
    n = rows.groupby(["base", "step"])["n_test"].max()
    out = []
    for (base, step), part in means.groupby(["base", "step"]):
        full = float(part.loc[np.isclose(part["width"], 1.0), "value"].mean())
        small = float(part.loc[part["width"].idxmin(), "value"])
        m = float(n.loc[(base, step)])
        se = math.sqrt(float(binomial_se(full, m)) ** 2 + float(binomial_se(small, m)) ** 2)
        out.append({"base": base, "step": int(step), "full": full, "smallest": small,
                    "spread": full - small, "se": se})
    return pd.DataFrame(out)


def spread_change(spread: pd.DataFrame, name: str) -> tuple[float, float]:
    """Change of ``spread`` of model ``name`` from its first trained snapshot (step > 0) to
    its last, and the SE of that change. NaN when there are fewer than two trained
    snapshots."""
    part = spread[(spread["base"] == name) & (spread["step"] > 0)].sort_values("step")
    if len(part) < 2:
        return math.nan, math.nan
    first, last = part.iloc[0], part.iloc[-1]
    return float(last["spread"] - first["spread"]), \
        float(math.sqrt(first["se"] ** 2 + last["se"] ** 2))


def gap_change_bootstrap(name: str, first: Any, last: Any, steps: tuple[int, int],
                         train: Any, test: Any, *, smallest: float, n_boot: int = 200,
                         batch_size: int = 256, device: Any = None, settings: Any = None
                         ) -> tuple[float, float, float]:
    """Change of the gap acc(1) − acc(``smallest``) from snapshot ``first`` to ``last``
    (encoders after ``steps`` = (first step, last step)), k-NN on the full training bank, with
    a paired 95 % bootstrap over the test images (all four accuracies from one resample).

    Returns ``(change, lo, hi)``.
    """
    from slimlib.book.robustness import analyses as rb
    from slimlib.probes import knn_predict

    y_tr, y_te = train.labels.numpy(), test.labels.numpy()
    preds = []
    for step, encoder in zip(steps, (first, last), strict=True):
        feats = rb.width_features(encoder, {"train": train, "test": test}, (smallest, 1.0),
                                  name=snapshot_label(name, step), batch_size=batch_size,
                                  device=device, settings=settings)
        preds.append({w: knn_predict(f["train"], y_tr, f["test"]) for w, f in feats.items()})

    def stat(idx: np.ndarray) -> float:
        y = y_te[idx]
        gaps = [rb.macro_accuracy(y, p[1.0][idx]) - rb.macro_accuracy(y, p[float(smallest)][idx])
                for p in preds]
        return gaps[1] - gaps[0]

    return rb.bootstrap(stat, len(y_te), n_boot=n_boot)
