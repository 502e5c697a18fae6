"""The linear probe on frozen features: L2-regularised logistic regression by L-BFGS.

:func:`linear_probe_predict` and :func:`linear_probe_score` (softmax regression for
single-label data, one-vs-rest for multi-label data, standardised features, zero
initialisation, so no seed enters the fit). Input checks and the scores come from
:mod:`slimlib.probes._inputs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slimlib._validation import check_int
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

__all__ = ["linear_probe_outcomes", "linear_probe_predict", "linear_probe_score"]

# Linear-probe compute dtype: float32 L-BFGS was 2-10x faster than float64 on the shared CPU
# and agrees with scikit-learn to ~1e-4 in probability (tests/probes/test_probes.py).
_LINEAR_DTYPE = torch.float32


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
    train_x, test_x, _ = common_scale(train_x, test_x)  # standardising is scale-free
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
    tr_x, tr_y, te_x = prepare_train(train_x, train_y, test_x)
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
    return linear_probe_outcomes(train_x, train_y, test_x, test_y, seed=seed,
                                 train_fraction=train_fraction, l2=l2, max_iter=max_iter)[0]


def linear_probe_outcomes(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *,
                          seed: int = 0, train_fraction: float = 1.0, l2: float = 1e-3,
                          max_iter: int = 300
                          ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """:func:`linear_probe_score` with the per-image outcomes behind it: ``(value, labels,
    preds)`` as :func:`slimlib.probes._knn.knn_outcomes` (``None`` for multi-label data)."""
    _check_linear_args(l2, max_iter)
    seed = check_seed(seed)
    tr_x, tr_y, te_x, te_y = prepare(train_x, train_y, test_x, test_y)
    keep = subsample(tr_y, train_fraction, seed)
    if keep is not None:
        tr_x, tr_y = tr_x[torch.from_numpy(keep)], tr_y[keep]
    if tr_y.ndim == 2:
        mask = check_multi(tr_y, te_y)
        return macro_map(te_y, _linear(tr_x, tr_y, te_x, l2, max_iter), mask), None, None
    classes, tr_codes, te_codes = encode_single(tr_y, te_y)
    train_classes, tr_local = np.unique(tr_codes, return_inverse=True)
    pred = train_classes[_linear(tr_x, tr_local, te_x, l2, max_iter)]
    return macro_accuracy(te_codes, pred), te_y, classes[pred]
