"""Frozen-feature probes: k-nearest-neighbour classification and a linear probe.

Both probes take train/test features ``(N, D)`` (NumPy arrays or torch tensors) and labels that
are either single-label ``(N,)`` integers or multi-label ``(N, K)`` multi-hot (0/1) arrays, and
return one score:

* single-label: ``"accuracy_macro"``, the mean per-class recall over classes present in the
  test set (= ``sklearn.metrics.balanced_accuracy_score``);
* multi-label: ``"map_macro"``, the mean average precision over classes with at least one
  positive test sample (= ``sklearn.metrics.average_precision_score(average="macro")`` on those
  classes).

Seeds only select a training subset (``train_fraction < 1``); with ``train_fraction=1`` both
probes are deterministic and every seed gives the same score. See ``docs/evaluation.md``.

This module is the probes' front door: :func:`score` picks a probe by protocol, and the probes
are re-exported from :mod:`slimlib.probes._knn` (k-NN), :mod:`slimlib.probes._linear` (linear) and
:mod:`slimlib.probes._inputs` (input checks, scores, ``METRIC_NAMES``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimlib._validation import check_choice
from slimlib.constants import PROTOCOLS
from slimlib.probes._inputs import METRIC_NAMES, ClassCoverageWarning, metric_name
from slimlib.probes._knn import KNN_METRICS as KNN_METRICS  # the k-NN distance metrics
from slimlib.probes._knn import knn_outcomes, knn_predict, knn_score
from slimlib.probes._linear import linear_probe_outcomes, linear_probe_predict, linear_probe_score

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "ClassCoverageWarning",
    "knn_outcomes",
    "knn_predict",
    "knn_score",
    "linear_probe_outcomes",
    "linear_probe_predict",
    "linear_probe_score",
    "metric_name",
    "score",
    "score_outcomes",
]


def score(protocol: str, train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
          seed: int = 0, **kwargs: Any) -> float:
    """Score features with ``protocol`` ``"knn"`` (:func:`knn_score`) or ``"linear"``
    (:func:`linear_probe_score`); ``kwargs`` go to that function."""
    check_choice(protocol, PROTOCOLS, "protocol")
    fn = knn_score if protocol == "knn" else linear_probe_score
    return fn(train_x, train_y, test_x, test_y, seed=seed, **kwargs)


def score_outcomes(protocol: str, train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                   seed: int = 0, **kwargs: Any
                   ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """:func:`score` with the per-image outcomes behind it: ``(value, labels, preds)``.

    Single-label data: ``labels`` are the test class ids in test order, ``preds`` the predicted
    class ids, and ``value`` is exactly their macro accuracy
    (:func:`slimlib.sweeping.outcomes.encode` stores them in a sweep row). Multi-label data:
    ``(value, None, None)``.
    """
    check_choice(protocol, PROTOCOLS, "protocol")
    fn = knn_outcomes if protocol == "knn" else linear_probe_outcomes
    return fn(train_x, train_y, test_x, test_y, seed=seed, **kwargs)
