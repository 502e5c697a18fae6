"""Stage 4 — probes: k-NN (the paper's protocol, k = 5) and a linear probe on frozen features.

Both take train/test features ``(N, D)`` and labels; :func:`score` returns the metric
(macro accuracy, or macro mAP for multi-label data) and :func:`score_outcomes` also the
per-image outcomes. :class:`CrossFit` scores small datasets by stratified k-fold
cross-fitting, so every image is a test image once. See ``docs/evaluation.md``.

Private modules: ``_score`` (the dispatcher), ``_knn``, ``_linear``, ``_inputs`` (input
checks and metrics both probes share) and ``_crossfit``.
"""

from slimlib.probes._crossfit import (
    FOLDS,
    NOTE,
    CrossFit,
    CrossFitted,
    bank_size,
    crossfit_outcomes,
    fold_ids,
    note,
)
from slimlib.probes._inputs import macro_accuracy, subsample
from slimlib.probes._knn import KNN_METRICS
from slimlib.probes._score import (
    METRIC_NAMES,
    PROTOCOLS,
    ClassCoverageWarning,
    knn_outcomes,
    knn_predict,
    knn_score,
    linear_probe_outcomes,
    linear_probe_predict,
    linear_probe_score,
    metric_name,
    score,
    score_outcomes,
)

__all__ = ["score", "score_outcomes", "knn_predict", "knn_score", "knn_outcomes",
           "linear_probe_predict", "linear_probe_score", "linear_probe_outcomes", "metric_name",
           "METRIC_NAMES", "PROTOCOLS", "KNN_METRICS", "ClassCoverageWarning", "subsample",
           "macro_accuracy", "CrossFit", "CrossFitted", "FOLDS", "NOTE", "fold_ids",
           "crossfit_outcomes", "bank_size", "note"]
