"""Redundancy metrics of frozen features: correlation, PCA spectrum, effective dimension, CKA.

All functions take features ``x`` of shape ``(N, D)`` (N samples, D feature dimensions) as a
NumPy array or a torch tensor, compute in float64 and return Python floats or NumPy arrays.
Definitions follow the paper (Hackel, Burgert, Demir 2026) and are spelled out in
``docs/evaluation.md``:

* :func:`mean_feature_correlation`: mean ``|corr(e_i, e_j)|`` over the strictly upper triangle of
  the D×D Pearson correlation matrix.
* :func:`explained_variance_ratio`: PCA spectrum of the mean-centred features, ``λ_i / Σλ``.
* :func:`evr_slope`: least-squares slope of ``log EVR_i`` against ``log i`` (i is 1-based).
* :func:`participation_ratio`: effective dimension ``(Σλ)² / Σλ²``.
* :func:`linear_cka`: linear centred kernel alignment (Kornblith et al., ICML 2019).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from slimlib.constants import DESCRIBE_KEYS

__all__ = [
    "DESCRIBE_KEYS",
    "describe_features",
    "evr_slope",
    "explained_variance_ratio",
    "linear_cka",
    "mean_feature_correlation",
    "participation_ratio",
]

# DESCRIBE_KEYS (the keys of describe_features, in order) lives in slimlib.constants; the sweep's
# ``protocol="features"`` metric names are slimlib.constants.FEATURE_METRICS.

#: Default EVR floor of :func:`evr_slope`: components with a smaller ratio are numerically zero
#: (the float64 eigensolver resolves about 1e-15 of the largest eigenvalue; missing directions of
#: rank-deficient data land at or below that) and are left out of the log-log fit.
EVR_FLOOR = 1e-12

_CONSTANT_POLICIES = ("zero", "exclude")


def _as_features(x: Any, name: str = "x", min_features: int = 1) -> np.ndarray:
    """Return ``x`` as a float64 array ``(N, D)``, or raise ``ValueError`` naming the problem."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape (N, D); got {type(x).__name__}"
                         f" that cannot be converted to float64 ({err})") from err
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D) (samples × features); "
                         f"got shape {arr.shape}. Flatten or pool the features first.")
    n, d = arr.shape
    if n < 2:
        raise ValueError(f"{name} needs at least N=2 samples to estimate (co)variances; got N={n}")
    if d < min_features:
        raise ValueError(f"{name} needs at least D={min_features} features; got D={d}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or Inf values in {bad} of {n} samples; "
                         "the features are broken (check the model/width that produced them)")
    return _power_of_two_scaled(arr)


def _power_of_two_scaled(arr: np.ndarray) -> np.ndarray:
    """``arr`` divided by the power of two nearest above its largest magnitude.

    Every metric here is invariant to scaling all features by one constant, but sums of
    squares overflow float64 for entries beyond ~1e154 (``mean_feature_correlation(1e200 * x)``
    read 0.0, ``linear_cka(1e100 * x, y)`` NaN) and underflow for tiny ones. Dividing by a
    power of two is exact (mantissas unchanged), so ordinary features give bit-identical
    results and huge or tiny finite ones give the same numbers as their rescaled copies.
    """
    peak = float(np.max(np.abs(arr))) if arr.size else 0.0
    if peak == 0.0:
        return arr
    exponent = np.frexp(peak)[1]  # peak = m * 2**exponent with 0.5 <= m < 1
    if -60 <= exponent <= 60:  # comfortably inside the range: leave the data as they are
        return arr
    return np.ldexp(arr, -exponent)


def _constant_columns(x: np.ndarray) -> np.ndarray:
    """Boolean mask ``(D,)`` of features whose N values are all identical."""
    return np.ptp(x, axis=0) == 0


def _covariance_spectrum(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of the centred scatter matrix, descending, length ``min(N, D)``.

    These are ``(N - 1)`` times the covariance eigenvalues (the scale cancels in every ratio).
    They come from ``eigvalsh`` of the smaller of ``XᶜᵀXᶜ`` (D×D) and ``XᶜXᶜᵀ`` (N×N), which
    is an order of magnitude faster than an SVD of ``Xᶜ`` here; eigenvalues below the
    rounding level (about 1e-15 of the largest) are not resolved and may read as 0.
    """
    centred = x - x.mean(axis=0, keepdims=True)
    n, d = centred.shape
    scatter = centred.T @ centred if d <= n else centred @ centred.T
    power = np.clip(np.linalg.eigvalsh(scatter)[::-1], 0.0, None)
    if not power.sum() > 0:
        raise ValueError("all features are constant (zero total variance); the PCA spectrum "
                         "is undefined")
    return np.ascontiguousarray(power)


def _slope(evr: np.ndarray, n: int, n_components: int | None, floor: float) -> float:
    if n_components is not None and (
            isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer))
            or n_components < 2):
        raise ValueError(f"n_components must be an integer >= 2 or None; got {n_components!r}")
    if not (isinstance(floor, (int, float)) and 0 <= floor < 1):
        raise ValueError(f"floor must be a number in [0, 1); got {floor!r}")
    k = min(n - 1, evr.size)
    if n_components is not None:
        k = min(k, int(n_components))
    ratios = evr[:k]
    keep = ratios > floor
    # The spectrum is sorted, so ``keep`` is a prefix: components 1..m.
    m = int(keep.sum())
    if m < 2:
        raise ValueError(f"evr_slope needs at least 2 components with EVR > floor={floor:g}; "
                         f"found {m} (the centred features have rank {m}). A power-law fit "
                         "is undefined for such features.")
    log_i = np.log(np.arange(1, m + 1, dtype=np.float64))
    log_r = np.log(ratios[:m])
    log_i_c = log_i - log_i.mean()
    return float((log_i_c * (log_r - log_r.mean())).sum() / (log_i_c**2).sum())


def mean_feature_correlation(x: Any, *, constant: str = "zero") -> float:
    """Mean absolute Pearson correlation between distinct features.

    ``MFC = 2 / (D (D - 1)) · Σ_{i<j} |corr(x[:, i], x[:, j])|`` (diagonal excluded).

    Args:
        x: features ``(N, D)`` with ``N >= 2`` and ``D >= 2``.
        constant: how features whose N values are all identical are handled. Their correlation
            is undefined (0/0). ``"zero"`` (default): every correlation involving a constant
            feature counts as 0 and the average still runs over all ``D (D - 1) / 2`` pairs, so
            values stay comparable across widths with the same D. ``"exclude"``: constant
            features are dropped first (needs at least 2 non-constant features).

    Returns:
        A float in ``[0, 1]``; never NaN.
    """
    if constant not in _CONSTANT_POLICIES:
        raise ValueError(f"constant must be one of {_CONSTANT_POLICIES}; got {constant!r}")
    arr = _as_features(x, min_features=2)
    const = _constant_columns(arr)
    if constant == "exclude":
        arr = arr[:, ~const]
        if arr.shape[1] < 2:
            raise ValueError(f"mean_feature_correlation(constant='exclude') needs at least 2 "
                             f"non-constant features; got {arr.shape[1]}")
        const = np.zeros(arr.shape[1], dtype=bool)
    d = arr.shape[1]
    centred = arr - arr.mean(axis=0, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=0))
    scale = np.zeros_like(norms)
    scale[~const] = 1.0 / norms[~const]
    unit = centred * scale  # constant columns become exactly zero
    corr = np.abs(np.clip(unit.T @ unit, -1.0, 1.0))
    off_diagonal = corr.sum() - np.trace(corr)
    return float(off_diagonal / (d * (d - 1)))


def explained_variance_ratio(x: Any) -> np.ndarray:
    """PCA explained variance ratio of mean-centred features.

    Args:
        x: features ``(N, D)``.

    Returns:
        ``(min(N, D),)`` float64 array ``λ_i / Σ_j λ_j`` in descending order, where ``λ`` are the
        eigenvalues of the feature covariance. Matches
        ``sklearn.decomposition.PCA().fit(x).explained_variance_ratio_``.
    """
    power = _covariance_spectrum(_as_features(x))
    return power / power.sum()


def evr_slope(x: Any, *, n_components: int | None = None, floor: float = EVR_FLOOR) -> float:
    """Slope of ``log EVR_i`` against ``log i`` (power-law exponent of the PCA spectrum).

    The fit is ordinary least squares over components ``i = 1..m`` where ``m`` is the number
    of leading components with ``EVR_i > floor`` among the first ``k = min(N - 1, D)``
    (centred data has rank at most ``N - 1``), further capped at ``n_components`` if given.
    A spectrum ``λ_i ∝ i^-α`` gives ``-α``; more negative means variance concentrated in fewer
    directions.

    Args:
        x: features ``(N, D)``.
        n_components: fit only the leading components (an integer >= 2), or ``None`` for all.
        floor: EVR values at or below it are treated as numerical zeros and not fitted.

    Returns:
        The slope (a float, usually negative).
    """
    arr = _as_features(x)
    power = _covariance_spectrum(arr)
    return _slope(power / power.sum(), arr.shape[0], n_components, floor)


def participation_ratio(x: Any) -> float:
    """Effective dimensionality ``d_eff = (Σλ_i)² / Σλ_i²`` of the covariance eigenvalues.

    Equals D for an isotropic distribution and k for data spread evenly over k directions.

    Args:
        x: features ``(N, D)``.

    Returns:
        A float in ``[1, min(N - 1, D)]``.
    """
    power = _covariance_spectrum(_as_features(x))
    evr = power / power.sum()
    return float(1.0 / (evr**2).sum())


def linear_cka(x: Any, y: Any) -> float:
    """Linear centred kernel alignment between two representations of the same N samples.

    ``CKA = ||Yᶜᵀ Xᶜ||_F² / (||Xᶜᵀ Xᶜ||_F · ||Yᶜᵀ Yᶜ||_F)`` with column-centred ``Xᶜ``, ``Yᶜ``
    (Kornblith et al., 2019). Invariant to orthogonal transforms and isotropic scaling of
    either input; 1 for identical representations.

    Args:
        x: features ``(N, D1)``.
        y: features ``(N, D2)`` of the same samples in the same order.

    Returns:
        A float in ``[0, 1]``.
    """
    xa = _as_features(x, "x")
    ya = _as_features(y, "y")
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(f"x and y must describe the same samples; got N={xa.shape[0]} and "
                         f"N={ya.shape[0]}")
    xc = xa - xa.mean(axis=0, keepdims=True)
    yc = ya - ya.mean(axis=0, keepdims=True)
    n = xa.shape[0]
    if xa.shape[1] + ya.shape[1] <= n:  # feature-space form: cost N·(D1 + D2)²
        cross = (yc.T @ xc) ** 2
        norm_x = np.linalg.norm(xc.T @ xc)
        norm_y = np.linalg.norm(yc.T @ yc)
        hsic = cross.sum()
    else:  # Gram form: cost N²·(D1 + D2)
        gram_x = xc @ xc.T
        gram_y = yc @ yc.T
        norm_x = np.linalg.norm(gram_x)
        norm_y = np.linalg.norm(gram_y)
        hsic = (gram_x * gram_y).sum()
    for value, name in ((norm_x, "x"), (norm_y, "y")):
        if not value > 0:
            raise ValueError(f"{name} has zero variance (all features constant); CKA is undefined")
    return float(np.clip(hsic / (norm_x * norm_y), 0.0, 1.0))


def describe_features(x: Any, *, n_components: int | None = None,
                      floor: float = EVR_FLOOR) -> dict[str, float]:
    """The scalar redundancy metrics of one feature matrix (one eigendecomposition for all).

    Args:
        x: features ``(N, D)`` with ``D >= 2``.
        n_components, floor: passed to the EVR slope fit (see :func:`evr_slope`).

    Returns:
        ``{"mean_feature_correlation", "evr_slope", "participation_ratio",
        "explained_variance_first"}`` (see :data:`DESCRIBE_KEYS`); the last is the EVR of the
        first principal component.
    """
    arr = _as_features(x, min_features=2)
    power = _covariance_spectrum(arr)
    evr = power / power.sum()
    return {
        "mean_feature_correlation": mean_feature_correlation(arr),
        "evr_slope": _slope(evr, arr.shape[0], n_components, floor),
        "participation_ratio": float(1.0 / (evr**2).sum()),
        "explained_variance_first": float(evr[0]),
    }
