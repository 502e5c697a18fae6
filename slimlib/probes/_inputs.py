"""What both probes share: checking their inputs and computing their scores.

Features become CPU tensors ``(N, D)`` (float32 unless float64) checked for shape and NaN/Inf
(:func:`as_features`); labels become ``(N,)`` class ids or ``(N, K)`` multi-hot
(:func:`as_labels`); :func:`subsample` draws the seeded training subset; the scores are
:func:`macro_accuracy` (single-label) and :func:`macro_map` (multi-label), with
:class:`ClassCoverageWarning` for classes missing from one split. The probes themselves are
:mod:`slimlib.probes._knn` and :mod:`slimlib.probes._linear`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from slimlib._validation import check_int, check_paired_samples

#: Score names: single-label macro accuracy and multi-label macro mAP.
METRIC_NAMES = ("accuracy_macro", "map_macro")


class ClassCoverageWarning(UserWarning):
    """A class has no training or no test samples (the score then ignores or never predicts it)."""


def as_features(x: Any, name: str) -> torch.Tensor:
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


def as_labels(y: Any, name: str) -> np.ndarray:
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


def prepare_train(train_x: Any, train_y: Any, test_x: Any
                  ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Checked training features and labels and test features of one dtype (what a probe's
    ``*_predict`` needs)."""
    tr_x, te_x = as_features(train_x, "train_x"), as_features(test_x, "test_x")
    tr_y = as_labels(train_y, "train_y")
    check_paired_samples(tr_x, tr_y, "train")
    if tr_x.shape[1] != te_x.shape[1]:
        raise ValueError(f"train_x and test_x must have the same feature width; got "
                         f"D={tr_x.shape[1]} and D={te_x.shape[1]}")
    if tr_x.dtype != te_x.dtype:
        tr_x, te_x = tr_x.to(torch.float64), te_x.to(torch.float64)
    return tr_x, tr_y, te_x


def prepare(train_x: Any, train_y: Any, test_x: Any, test_y: Any
            ) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
    """:func:`prepare_train` plus the checked test labels, consistent with the training ones."""
    tr_x, tr_y, te_x = prepare_train(train_x, train_y, test_x)
    te_y = as_labels(test_y, "test_y")
    check_paired_samples(te_x, te_y, "test")
    if tr_y.ndim != te_y.ndim:
        raise ValueError("train_y and test_y must both be single-label (N,) or both multi-label "
                         f"(N, K); got {tr_y.ndim}-D and {te_y.ndim}-D")
    if tr_y.ndim == 2 and tr_y.shape[1] != te_y.shape[1]:
        raise ValueError(f"train_y and test_y must have the same number of classes; got "
                         f"K={tr_y.shape[1]} and K={te_y.shape[1]}")
    return tr_x, tr_y, te_x, te_y


def check_seed(seed: Any) -> int:
    return check_int(seed, "seed", low=0)


def subsample(y: np.ndarray, fraction: float, seed: int) -> np.ndarray | None:
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


def encode_single(train_y: np.ndarray, test_y: np.ndarray
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


def check_multi(train_y: np.ndarray, test_y: np.ndarray) -> np.ndarray:
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


def macro_accuracy(true_codes: Any, pred_codes: Any) -> float:
    """Balanced (macro) accuracy: the mean recall over the classes present in ``true_codes``
    (``(M,)`` labels vs ``(M,)`` predictions)."""
    true_codes, pred_codes = np.asarray(true_codes), np.asarray(pred_codes)
    classes, inverse = np.unique(true_codes, return_inverse=True)
    hits = np.bincount(inverse, weights=(pred_codes == true_codes), minlength=classes.size)
    return float((hits / np.bincount(inverse, minlength=classes.size)).mean())


def macro_map(true: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(true[:, mask], scores[:, mask], average="macro"))


def common_scale(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
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
