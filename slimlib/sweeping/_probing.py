"""Probing one width's features inside a sweep: a probe row's value, notes and per-image
outcomes (:func:`_score`), and the feature-metric rows (:func:`_feature_metrics`)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from slimlib.constants import REDUNDANCY_METRICS
from slimlib.sweeping.outcomes import encode


def _score(protocol: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
           seed: int, train_fraction: float, *, folds: np.ndarray | None = None
           ) -> tuple[float, list[str], str]:
    """One probe score, the warning messages it raised (e.g. a class absent from a split) and
    its ``outcomes`` cell (:func:`slimlib.sweeping.outcomes.encode`; empty for multi-label).

    ``folds`` (the fold of each image): cross-fitted, ``test`` holds every image and ``train``
    is ignored (:func:`slimlib.probes.crossfit_outcomes`).
    """
    from slimlib import probes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if folds is not None:
            value, labels, preds = probes.crossfit_outcomes(
                protocol, test[0], test[1], folds, seed=seed, train_fraction=train_fraction)
        else:
            value, labels, preds = probes.score_outcomes(
                protocol, train[0], train[1], test[0], test[1], seed=seed,
                train_fraction=train_fraction)
    notes = list(dict.fromkeys(f"{type(w.message).__name__}: {w.message}" for w in caught))
    return float(value), notes, _outcomes_cell(labels, preds)


def _outcomes_cell(labels: np.ndarray | None, preds: np.ndarray | None) -> str:
    """The ``outcomes`` cell of single-label outcomes (class ids as given; ids below 0 are
    shifted by the smallest id so the cell can hold them)."""
    if labels is None or preds is None:
        return ""
    low = min(int(labels.min(initial=0)), int(preds.min(initial=0)))
    return encode(labels - low, preds - low)


def _feature_metrics(feats: np.ndarray, reference: np.ndarray | None
                     ) -> dict[str, tuple[float, str]]:
    """The :data:`FEATURE_METRICS` of test features: name -> (value, note)."""
    from slimlib import metrics

    out: dict[str, tuple[float, str]] = {}
    try:
        desc = metrics.describe_features(feats)
        for name in REDUNDANCY_METRICS:
            out[name] = (float(desc[name]), "")
    except ValueError as err:
        out.update({name: (math.nan, f"undefined: {err}") for name in REDUNDANCY_METRICS})
    if reference is None:
        out["cka_full"] = (math.nan, "no full-width reference")
    else:
        try:
            out["cka_full"] = (float(metrics.linear_cka(feats, reference)), "")
        except ValueError as err:
            out["cka_full"] = (math.nan, f"undefined: {err}")
    return out
