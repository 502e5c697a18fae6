"""The k-nearest-neighbour probe (the paper's main protocol, k=5) on frozen features.

:func:`knn_predict` and :func:`knn_score`: cosine or Euclidean neighbours found in chunks of
at most ``_CHUNK_ELEMENTS`` similarities, a majority vote with deterministic tie-breaking for
single-label data and the neighbours' label fractions for multi-label data. Input checks and
the scores come from :mod:`slimlib.probes._inputs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slimlib._validation import check_choice, check_int
from slimlib.probes._inputs import (
    check_multi,
    check_seed,
    common_scale,
    encode_single,
    macro_accuracy,
    macro_map,
    prepare,
    prepare_train,
    subsample,
)

__all__ = ["KNN_METRICS", "knn_outcomes", "knn_predict", "knn_score"]

#: k-NN distance metrics.
KNN_METRICS = ("cosine", "euclidean")

# Upper bound on the number of similarity entries held at once by the k-NN (float32: 64 MiB).
_CHUNK_ELEMENTS = 1 << 24


def _check_k(k: Any, n_train: int) -> int:
    k = check_int(k, "k")
    if k > n_train:
        raise ValueError(f"k={k} is larger than the training set ({n_train} samples); use "
                         "k <= the number of training samples")
    return int(k)


def _neighbours(train_x: torch.Tensor, test_x: torch.Tensor, k: int, metric: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarities and indices ``(M, k)`` of the k nearest training samples, nearest first.

    Cosine similarity for ``"cosine"`` (L2-normalised features; a zero vector has similarity 0
    to everything), negative Euclidean distance for ``"euclidean"``. Both are computed on
    features rescaled by one power of two (:func:`common_scale`), so huge or tiny finite
    features cannot overflow or underflow.
    """
    train_x, test_x, _ = common_scale(train_x, test_x)
    if metric == "cosine":
        train_x = F.normalize(train_x, dim=1)
        test_x = F.normalize(test_x, dim=1)
    else:
        train_sq = (train_x * train_x).sum(dim=1)
        test_sq = (test_x * test_x).sum(dim=1)
    rows = max(1, _CHUNK_ELEMENTS // train_x.shape[0])
    sims, idxs = [], []
    train_t = train_x.T  # a transposed view; BLAS reads it without a copy
    for start in range(0, test_x.shape[0], rows):  # loop over chunks of rows, not samples
        sim = test_x[start:start + rows] @ train_t
        if metric == "euclidean":
            # -||a - b||² = 2ab - ||a||² - ||b||²
            sim.mul_(2).sub_(train_sq).sub_(test_sq[start:start + rows, None])
        val, idx = torch.topk(sim, k, dim=1, largest=True, sorted=True)
        if metric == "euclidean":
            val = -torch.sqrt(torch.clamp(-val, min=0))  # of the rescaled features
        sims.append(val)
        idxs.append(idx)
    return torch.cat(sims), torch.cat(idxs)


def _vote(neighbour_codes: torch.Tensor, sims: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Majority vote ``(M,)`` over neighbour labels ``(M, k)`` (nearest first), ties broken by
    the larger summed similarity, then by the class of the nearest tied neighbour."""
    m, k = neighbour_codes.shape
    votes = torch.zeros(m, n_classes, dtype=torch.int64)
    votes.scatter_add_(1, neighbour_codes, torch.ones_like(neighbour_codes))
    sim_sum = torch.zeros(m, n_classes, dtype=torch.float64)
    sim_sum.scatter_add_(1, neighbour_codes, sims.to(torch.float64))
    first = torch.full((m, n_classes), k, dtype=torch.int64)
    ranks = torch.arange(k).expand(m, k)
    first.scatter_reduce_(1, neighbour_codes, ranks, reduce="amin")
    tied = votes == votes.max(dim=1, keepdim=True).values
    sim_sum = torch.where(tied, sim_sum, torch.tensor(-torch.inf, dtype=torch.float64))
    tied &= sim_sum == sim_sum.max(dim=1, keepdim=True).values
    first = torch.where(tied, first, torch.tensor(k + 1))
    return first.argmin(dim=1)


def _knn(train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, k: int,
         metric: str, n_classes: int) -> np.ndarray:
    """Predicted codes ``(M,)`` (single-label codes) or neighbour fractions ``(M, K)``."""
    sims, idx = _neighbours(train_x, test_x, k, metric)
    labels = torch.from_numpy(train_y)
    if train_y.ndim == 1:
        return _vote(labels[idx], sims, n_classes).numpy()
    return labels[idx].to(torch.float32).mean(dim=1).numpy()


def knn_predict(train_x: Any, train_y: Any, test_x: Any, *, k: int = 5,
                metric: str = "cosine") -> np.ndarray:
    """k-NN predictions for ``test_x``.

    Args:
        train_x: training features ``(N, D)``.
        train_y: ``(N,)`` integer class ids or ``(N, K)`` multi-hot labels.
        test_x: query features ``(M, D)``.
        k: number of neighbours.
        metric: ``"cosine"`` (L2-normalised features) or ``"euclidean"``.

    Returns:
        Single-label: predicted class ids ``(M,)`` (majority vote; ties → larger summed
        similarity → nearest neighbour's class). Multi-label: per-class scores ``(M, K)``, the
        fraction of the k neighbours carrying each label.
    """
    check_choice(metric, KNN_METRICS, "metric")
    tr_x, tr_y, te_x = prepare_train(train_x, train_y, test_x)
    k = _check_k(k, tr_x.shape[0])
    if tr_y.ndim == 2:
        return _knn(tr_x, tr_y, te_x, k, metric, tr_y.shape[1])
    classes, codes = np.unique(tr_y, return_inverse=True)
    return classes[_knn(tr_x, codes, te_x, k, metric, classes.size)]


def knn_score(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, k: int = 5,
              metric: str = "cosine", seed: int = 0, train_fraction: float = 1.0) -> float:
    """k-nearest-neighbour score of frozen features (the paper's main protocol, k=5).

    Args:
        train_x, test_x: features ``(N, D)`` and ``(M, D)``.
        train_y, test_y: ``(N,)``/``(M,)`` integer class ids, or ``(N, K)``/``(M, K)`` multi-hot.
        k: number of neighbours (``1 <= k <=`` training-set size).
        metric: ``"cosine"`` (default; L2-normalised features) or ``"euclidean"``.
        seed: selects the training subset when ``train_fraction < 1``; ignored otherwise
            (the k-NN itself is deterministic).
        train_fraction: fraction of the training set to use; single-label subsets are
            stratified per class.

    Returns:
        Single-label: macro accuracy (balanced accuracy). Multi-label: macro mAP over classes
        with a positive test sample, ranking by the fraction of neighbours carrying the label.

    Raises:
        ValueError: malformed or non-finite inputs, length mismatches, ``k`` too large.

    Warns:
        ClassCoverageWarning: a class is absent from the training or the test split.
    """
    return knn_outcomes(train_x, train_y, test_x, test_y, k=k, metric=metric, seed=seed,
                        train_fraction=train_fraction)[0]


def knn_outcomes(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, k: int = 5,
                 metric: str = "cosine", seed: int = 0, train_fraction: float = 1.0
                 ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """:func:`knn_score` with the per-image outcomes behind it: ``(value, labels, preds)``.

    Single-label: ``labels`` are the test class ids ``(M,)`` as given and ``preds`` the
    predicted class ids, and ``value`` is their macro accuracy. Multi-label: ``(value, None,
    None)``.
    """
    check_choice(metric, KNN_METRICS, "metric")
    seed = check_seed(seed)
    tr_x, tr_y, te_x, te_y = prepare(train_x, train_y, test_x, test_y)
    keep = subsample(tr_y, train_fraction, seed)
    if keep is not None:
        tr_x, tr_y = tr_x[torch.from_numpy(keep)], tr_y[keep]
    k = _check_k(k, tr_x.shape[0])
    if tr_y.ndim == 2:
        mask = check_multi(tr_y, te_y)
        return macro_map(te_y, _knn(tr_x, tr_y, te_x, k, metric, tr_y.shape[1]), mask), None, None
    classes, tr_codes, te_codes = encode_single(tr_y, te_y)
    pred = _knn(tr_x, tr_codes, te_x, k, metric, classes.size)
    return macro_accuracy(te_codes, pred), te_y, classes[pred]
