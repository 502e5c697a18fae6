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
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slimlib._validation import check_choice, check_int, check_paired_samples
from slimlib.constants import PROTOCOLS

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "ClassCoverageWarning",
    "knn_predict",
    "knn_score",
    "linear_probe_predict",
    "linear_probe_score",
    "metric_name",
    "score",
]

#: Score names: single-label macro accuracy and multi-label macro mAP.
METRIC_NAMES = ("accuracy_macro", "map_macro")
#: Protocols understood by :func:`score`.
#: k-NN distance metrics.
KNN_METRICS = ("cosine", "euclidean")

# Upper bound on the number of similarity entries held at once by the k-NN (float32: 64 MiB).
_CHUNK_ELEMENTS = 1 << 24
# Linear-probe compute dtype: float32 L-BFGS was 2-10x faster than float64 on the shared CPU
# and agrees with scikit-learn to ~1e-4 in probability (tests/test_probes.py).
_LINEAR_DTYPE = torch.float32


class ClassCoverageWarning(UserWarning):
    """A class has no training or no test samples (the score then ignores or never predicts it)."""


# --------------------------------------------------------------------------- validation


def _features(x: Any, name: str) -> torch.Tensor:
    """``x`` as a CPU tensor ``(N, D)`` (float32 unless float64), checked for shape and NaN/Inf."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a numeric array (N, D); got {type(x).__name__} "
                             f"({err})") from err
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in (
            torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise ValueError(f"{name} must hold real numbers; got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D); got shape {tuple(t.shape)}")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one sample and one feature; got shape "
                         f"{tuple(t.shape)}")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    # A sum over finite values is finite unless it overflows; only then is the full scan needed.
    if not torch.isfinite(t.sum()) and not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or Inf values in {bad} of {t.shape[0]} samples; "
                         "the features are broken (check the model/width that produced them)")
    return t.contiguous()


def _labels(y: Any, name: str) -> np.ndarray:
    """``(N,)`` int64 class labels or ``(N, K)`` uint8 multi-hot labels."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim == 1:
        if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} (single-label) must hold integer class ids; got dtype "
                             f"{arr.dtype}")
        if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{name} (single-label) must hold integer class ids; got "
                             "non-integer values")
        return arr.astype(np.int64)
    if arr.ndim == 2:
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} (multi-label) must be a 0/1 multi-hot array; got dtype "
                             f"{arr.dtype}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} (multi-label) must be multi-hot with values 0 and 1 only")
        return arr.astype(np.uint8)
    raise ValueError(f"{name} must be (N,) class ids or (N, K) multi-hot labels; got shape "
                     f"{arr.shape}")


def metric_name(labels: Any) -> str:
    """``"accuracy_macro"`` for ``(N,)`` single-label labels, ``"map_macro"`` for ``(N, K)``."""
    ndim = labels.ndim if hasattr(labels, "ndim") else np.asarray(labels).ndim
    if ndim == 1:
        return METRIC_NAMES[0]
    if ndim == 2:
        return METRIC_NAMES[1]
    raise ValueError(f"labels must be (N,) class ids or (N, K) multi-hot; got {ndim}-D")


def _prepare(train_x: Any, train_y: Any, test_x: Any, test_y: Any
             ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    tr_x, te_x = _features(train_x, "train_x"), _features(test_x, "test_x")
    tr_y, te_y = _labels(train_y, "train_y"), _labels(test_y, "test_y")
    check_paired_samples(tr_x, tr_y, "train")
    check_paired_samples(te_x, te_y, "test")
    if tr_x.shape[1] != te_x.shape[1]:
        raise ValueError(f"train_x and test_x must have the same feature width; got "
                         f"D={tr_x.shape[1]} and D={te_x.shape[1]}")
    if tr_y.ndim != te_y.ndim:
        raise ValueError("train_y and test_y must both be single-label (N,) or both multi-label "
                         f"(N, K); got {tr_y.ndim}-D and {te_y.ndim}-D")
    if tr_y.ndim == 2 and tr_y.shape[1] != te_y.shape[1]:
        raise ValueError(f"train_y and test_y must have the same number of classes; got "
                         f"K={tr_y.shape[1]} and K={te_y.shape[1]}")
    if tr_x.dtype != te_x.dtype:
        tr_x, te_x = tr_x.to(torch.float64), te_x.to(torch.float64)
    return tr_x, tr_y, te_x, te_y


def _check_seed(seed: Any) -> int:
    return check_int(seed, "seed", low=0)


def _subsample(y: np.ndarray, fraction: float, seed: int) -> np.ndarray | None:
    """Indices of a seeded training subset, or ``None`` for the full set.

    Single-label: stratified, each class keeps ``max(1, round(fraction * n_c))`` samples.
    Multi-label: a uniform random subset of ``max(1, round(fraction * N))`` samples.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not (0.0 < float(fraction) <= 1.0):
        raise ValueError(f"train_fraction must be a number in (0, 1]; got {fraction!r}")
    if float(fraction) == 1.0:
        return None
    rng = np.random.default_rng(seed)
    if y.ndim == 2:
        n_keep = max(1, round(fraction * y.shape[0]))
        return np.sort(rng.choice(y.shape[0], size=n_keep, replace=False))
    keep = []
    for cls in np.unique(y):  # sorted order: the same seed always gives the same subset
        members = np.flatnonzero(y == cls)
        n_keep = max(1, round(fraction * members.size))
        keep.append(rng.choice(members, size=n_keep, replace=False))
    return np.sort(np.concatenate(keep))


def _encode_single(train_y: np.ndarray, test_y: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class ids → codes 0..C-1 over the union of both splits; warn about one-sided classes."""
    classes = np.unique(np.concatenate([train_y, test_y]))
    tr_codes = np.searchsorted(classes, train_y)
    te_codes = np.searchsorted(classes, test_y)
    no_test = np.setdiff1d(classes, test_y)
    no_train = np.setdiff1d(classes, train_y)
    if no_test.size:
        warnings.warn(f"classes {no_test.tolist()} have no test samples; they are left out of "
                      "the macro accuracy", ClassCoverageWarning, stacklevel=3)
    if no_train.size:
        warnings.warn(f"classes {no_train.tolist()} have no training samples; they can never be "
                      "predicted (recall 0)", ClassCoverageWarning, stacklevel=3)
    return classes, tr_codes, te_codes


def _check_multi(train_y: np.ndarray, test_y: np.ndarray) -> np.ndarray:
    """Mask ``(K,)`` of classes scored by the macro mAP; warn about one-sided classes."""
    in_test = test_y.any(axis=0)
    if not in_test.any():
        raise ValueError("no class has a positive test sample; macro mAP is undefined")
    if (~in_test).any():
        warnings.warn(f"classes {np.flatnonzero(~in_test).tolist()} have no positive test "
                      "sample; they are left out of the macro mAP", ClassCoverageWarning,
                      stacklevel=3)
    in_train = train_y.any(axis=0)
    if (~in_train).any():
        warnings.warn(f"classes {np.flatnonzero(~in_train).tolist()} have no positive training "
                      "sample; their scores carry no information", ClassCoverageWarning,
                      stacklevel=3)
    return in_test


def _macro_accuracy(true_codes: np.ndarray, pred_codes: np.ndarray) -> float:
    """Mean recall over the classes present in ``true_codes``."""
    classes, inverse = np.unique(true_codes, return_inverse=True)
    hits = np.bincount(inverse, weights=(pred_codes == true_codes), minlength=classes.size)
    return float((hits / np.bincount(inverse, minlength=classes.size)).mean())


def _macro_map(true: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(true[:, mask], scores[:, mask], average="macro"))


# --------------------------------------------------------------------------- k-NN


def _check_k(k: Any, n_train: int) -> int:
    k = check_int(k, "k")
    if k > n_train:
        raise ValueError(f"k={k} is larger than the training set ({n_train} samples); use "
                         "k <= the number of training samples")
    return int(k)


def _common_scale(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``a`` and ``b`` divided by one power of two that brings their largest magnitude near 1,
    and the factor ``f`` with ``original = f * scaled``.

    Finite float32 features of magnitude ~1e19 have squared norms beyond float32's range
    (the k-NN then saw zero vectors and scored at chance); tiny ones underflow. A power of
    two is exact, so features already in range (|x| in [2^-40, 2^40]) are left untouched and
    every other input gives the neighbours and distances of its rescaled copy.
    """
    peak = max(float(a.abs().max()), float(b.abs().max()))
    if peak == 0.0:
        return a, b, 1.0
    exponent = int(np.frexp(peak)[1])
    if -40 <= exponent <= 40:
        return a, b, 1.0
    half = 2.0 ** (-(exponent // 2))  # two exact steps: 2**-exponent alone may not be normal
    rest = 2.0 ** (-(exponent - exponent // 2))
    return a * half * rest, b * half * rest, 2.0 ** exponent


def _neighbours(train_x: torch.Tensor, test_x: torch.Tensor, k: int, metric: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarities and indices ``(M, k)`` of the k nearest training samples, nearest first.

    Cosine similarity for ``"cosine"`` (L2-normalised features; a zero vector has similarity 0
    to everything), negative Euclidean distance for ``"euclidean"``. Both are computed on
    features rescaled by one power of two (:func:`_common_scale`), so huge or tiny finite
    features cannot overflow or underflow.
    """
    train_x, test_x, _ = _common_scale(train_x, test_x)
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
    tr_x, te_x = _features(train_x, "train_x"), _features(test_x, "test_x")
    tr_y = _labels(train_y, "train_y")
    check_paired_samples(tr_x, tr_y, "train")
    if tr_x.shape[1] != te_x.shape[1]:
        raise ValueError(f"train_x and test_x must have the same feature width; got "
                         f"D={tr_x.shape[1]} and D={te_x.shape[1]}")
    if tr_x.dtype != te_x.dtype:
        tr_x, te_x = tr_x.to(torch.float64), te_x.to(torch.float64)
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
    check_choice(metric, KNN_METRICS, "metric")
    seed = _check_seed(seed)
    tr_x, tr_y, te_x, te_y = _prepare(train_x, train_y, test_x, test_y)
    keep = _subsample(tr_y, train_fraction, seed)
    if keep is not None:
        tr_x, tr_y = tr_x[torch.from_numpy(keep)], tr_y[keep]
    k = _check_k(k, tr_x.shape[0])
    if tr_y.ndim == 2:
        mask = _check_multi(tr_y, te_y)
        return _macro_map(te_y, _knn(tr_x, tr_y, te_x, k, metric, tr_y.shape[1]), mask)
    classes, tr_codes, te_codes = _encode_single(tr_y, te_y)
    pred = _knn(tr_x, tr_codes, te_x, k, metric, classes.size)
    return _macro_accuracy(te_codes, pred)


# --------------------------------------------------------------------------- linear probe


def _fit_linear(x: torch.Tensor, target: torch.Tensor, multilabel: bool, l2: float,
                max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-batch L-BFGS on ``mean loss + l2/2 ||W||²`` (bias unpenalised), zero init.

    The objective is strictly convex in W, so the solution does not depend on a seed.
    """
    n_out = target.shape[1] if multilabel else int(target.max()) + 1
    weight = torch.zeros(x.shape[1], n_out, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(n_out, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-10,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = torch.addmm(bias, x, weight)
        if multilabel:
            loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / x.shape[0]
        else:
            loss = F.cross_entropy(logits, target)
        loss = loss + 0.5 * l2 * (weight * weight).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return weight.detach(), bias.detach()


def _linear(train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, l2: float,
            max_iter: int) -> np.ndarray:
    """Predicted train-class indices ``(M,)`` or per-class probabilities ``(M, K)``."""
    train_x, test_x, _ = _common_scale(train_x, test_x)  # standardising is scale-free
    x = train_x.to(torch.float64)
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = ((x - mean) / std).to(_LINEAR_DTYPE)
    x_test = ((test_x.to(torch.float64) - mean) / std).to(_LINEAR_DTYPE)
    if train_y.ndim == 2:
        target = torch.from_numpy(train_y).to(_LINEAR_DTYPE)
        weight, bias = _fit_linear(x, target, True, l2, max_iter)
        return torch.sigmoid(torch.addmm(bias, x_test, weight)).numpy()
    if np.unique(train_y).size == 1:
        return np.full(test_x.shape[0], train_y[0], dtype=np.int64)
    weight, bias = _fit_linear(x, torch.from_numpy(train_y), False, l2, max_iter)
    return torch.addmm(bias, x_test, weight).argmax(dim=1).numpy()


def _check_linear_args(l2: Any, max_iter: Any) -> None:
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 > 0:
        raise ValueError(f"l2 must be a positive number; got {l2!r}")
    check_int(max_iter, "max_iter")


def linear_probe_predict(train_x: Any, train_y: Any, test_x: Any, *, l2: float = 1e-3,
                         max_iter: int = 300) -> np.ndarray:
    """Fit a logistic-regression probe on standardised ``train_x`` and predict ``test_x``.

    Features are standardised with the training mean and standard deviation (constant features
    get scale 1). Single-label: multinomial (softmax) regression. Multi-label: one-vs-rest
    binary logistic regressions, fitted jointly (the loss separates per class). Objective:
    mean loss + ``l2 / 2 · ||W||²`` (bias unpenalised), i.e. scikit-learn's
    ``LogisticRegression(C=1 / (l2 · N))``, minimised by full-batch L-BFGS (float32, strong-Wolfe
    line search, at most ``max_iter`` iterations) from zero.

    Returns:
        Single-label: predicted class ids ``(M,)``. Multi-label: probabilities ``(M, K)``.
    """
    _check_linear_args(l2, max_iter)
    tr_x, te_x = _features(train_x, "train_x"), _features(test_x, "test_x")
    tr_y = _labels(train_y, "train_y")
    check_paired_samples(tr_x, tr_y, "train")
    if tr_x.shape[1] != te_x.shape[1]:
        raise ValueError(f"train_x and test_x must have the same feature width; got "
                         f"D={tr_x.shape[1]} and D={te_x.shape[1]}")
    if tr_y.ndim == 2:
        return _linear(tr_x, tr_y, te_x, l2, max_iter)
    classes, codes = np.unique(tr_y, return_inverse=True)
    return classes[_linear(tr_x, codes, te_x, l2, max_iter)]


def linear_probe_score(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, seed: int = 0,
                       train_fraction: float = 1.0, l2: float = 1e-3,
                       max_iter: int = 300) -> float:
    """Linear-probe score of frozen features.

    See :func:`linear_probe_predict` for the model. ``seed`` selects the training subset when
    ``train_fraction < 1`` (stratified per class for single-label data); the fit itself is
    convex with zero initialisation and no shuffling, so with ``train_fraction=1`` every seed
    gives the same score.

    Returns:
        Single-label: macro accuracy. Multi-label: macro mAP over classes with a positive
        test sample.

    Raises / Warns: as :func:`knn_score`.
    """
    _check_linear_args(l2, max_iter)
    seed = _check_seed(seed)
    tr_x, tr_y, te_x, te_y = _prepare(train_x, train_y, test_x, test_y)
    keep = _subsample(tr_y, train_fraction, seed)
    if keep is not None:
        tr_x, tr_y = tr_x[torch.from_numpy(keep)], tr_y[keep]
    if tr_y.ndim == 2:
        mask = _check_multi(tr_y, te_y)
        return _macro_map(te_y, _linear(tr_x, tr_y, te_x, l2, max_iter), mask)
    classes, tr_codes, te_codes = _encode_single(tr_y, te_y)
    train_classes, tr_local = np.unique(tr_codes, return_inverse=True)
    pred = train_classes[_linear(tr_x, tr_local, te_x, l2, max_iter)]
    return _macro_accuracy(te_codes, pred)


# --------------------------------------------------------------------------- dispatch


def score(protocol: str, train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
          seed: int = 0, **kwargs: Any) -> float:
    """Score features with ``protocol`` ``"knn"`` (:func:`knn_score`) or ``"linear"``
    (:func:`linear_probe_score`); ``kwargs`` go to that function."""
    check_choice(protocol, PROTOCOLS, "protocol")
    fn = knn_score if protocol == "knn" else linear_probe_score
    return fn(train_x, train_y, test_x, test_y, seed=seed, **kwargs)
