"""Redundancy metrics against analytic cases and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from slimlib.metrics import (
    DESCRIBE_KEYS,
    describe_features,
    evr_slope,
    explained_variance_ratio,
    linear_cka,
    mean_feature_correlation,
    participation_ratio,
)


def _with_spectrum(eigenvalues: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Data ``(n, D)`` whose centred covariance has exactly the given eigenvalues (scaled)."""
    rng = np.random.default_rng(seed)
    d = eigenvalues.size
    z = rng.normal(size=(n, d))
    u, _ = np.linalg.qr(z - z.mean(axis=0))  # orthonormal, centred columns
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))  # random rotation of the feature axes
    return u * np.sqrt(eigenvalues) @ v.T + rng.normal(size=d)  # plus an arbitrary offset


def _brute_mfc(x: np.ndarray) -> float:
    corr = np.corrcoef(x, rowvar=False)
    d = x.shape[1]
    upper = np.abs(corr[np.triu_indices(d, k=1)])
    assert upper.size == d * (d - 1) // 2
    return float(upper.mean())


# --------------------------------------------------------------------------- correlation


def test_mfc_matches_numpy_corrcoef() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    assert mean_feature_correlation(x) == pytest.approx(_brute_mfc(x), abs=1e-12)


def test_mfc_duplicated_columns_is_one() -> None:
    col = np.random.default_rng(2).normal(size=(100, 1))
    x = np.hstack([col, col, -2 * col + 3, col * 0.5])
    assert mean_feature_correlation(x) == pytest.approx(1.0, abs=1e-12)


def test_mfc_independent_features_small() -> None:
    x = np.random.default_rng(3).normal(size=(20000, 8))
    assert mean_feature_correlation(x) < 0.02


def test_mfc_constant_column_no_nan() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(200, 3))
    x = np.hstack([base, np.full((200, 1), 0.1)])
    zero = mean_feature_correlation(x)
    excl = mean_feature_correlation(x, constant="exclude")
    assert np.isfinite(zero) and np.isfinite(excl)
    # "zero": the 3 pairs with the constant feature count 0 in the mean over 6 pairs.
    assert excl == pytest.approx(_brute_mfc(base), abs=1e-12)
    assert zero == pytest.approx(excl * 3 / 6, abs=1e-12)
    assert mean_feature_correlation(np.ones((5, 4))) == 0.0
    with pytest.raises(ValueError, match="non-constant"):
        mean_feature_correlation(np.ones((5, 4)), constant="exclude")
    with pytest.raises(ValueError, match="constant must be one of"):
        mean_feature_correlation(x, constant="drop")


# --------------------------------------------------------------------------- spectrum


@pytest.mark.parametrize("shape", [(200, 30), (20, 50)])
def test_evr_matches_sklearn_pca(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=shape) @ np.diag(np.linspace(3, 0.1, shape[1])) + 5
    ours = explained_variance_ratio(x)
    ref = PCA().fit(x).explained_variance_ratio_
    assert ours.shape == ref.shape == (min(shape),)
    np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-13)
    assert ours.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.5])
def test_evr_slope_recovers_power_law(alpha: float) -> None:
    lam = np.arange(1, 41, dtype=float) ** -alpha
    x = _with_spectrum(lam, n=500)
    assert evr_slope(x) == pytest.approx(-alpha, abs=1e-6)
    assert evr_slope(x, n_components=10) == pytest.approx(-alpha, abs=1e-6)


def test_evr_slope_sampled_gaussian_power_law() -> None:
    # Sampled (not exact) data: the leading part of the spectrum still follows i^-alpha.
    rng = np.random.default_rng(6)
    lam = np.arange(1, 21, dtype=float) ** -1.5
    x = rng.normal(size=(20000, 20)) * np.sqrt(lam)
    assert evr_slope(x, n_components=10) == pytest.approx(-1.5, abs=0.05)


def test_evr_slope_fitted_range() -> None:
    # Rank-3 data in 10 dimensions: the 7 zero eigenvalues are below the floor and not fitted;
    # the fit uses exactly the three non-zero components.
    lam = np.array([4.0, 2.0, 1.0] + [0.0] * 7)
    x = _with_spectrum(lam, n=50)
    evr = lam[:3] / lam.sum()
    expected = np.polyfit(np.log([1.0, 2.0, 3.0]), np.log(evr), 1)[0]
    assert evr_slope(x) == pytest.approx(expected, abs=1e-6)
    # Only N - 1 = 3 components exist for N = 4 samples, whatever D is.
    y = np.random.default_rng(7).normal(size=(4, 10))
    evr_y = explained_variance_ratio(y)
    assert evr_y[3] < 1e-12
    ref = np.polyfit(np.log([1.0, 2.0, 3.0]), np.log(evr_y[:3]), 1)[0]
    assert evr_slope(y) == pytest.approx(ref, abs=1e-9)


def test_evr_slope_errors() -> None:
    x = np.random.default_rng(8).normal(size=(30, 5))
    with pytest.raises(ValueError, match="n_components"):
        evr_slope(x, n_components=1)
    with pytest.raises(ValueError, match="floor"):
        evr_slope(x, floor=-1.0)
    rank1 = np.outer(np.arange(10.0), np.ones(4))
    with pytest.raises(ValueError, match="at least 2 components"):
        evr_slope(rank1)


# --------------------------------------------------------------------------- participation ratio


def test_participation_ratio_isotropic_gaussian() -> None:
    d = 16
    x = np.random.default_rng(9).normal(size=(40000, d))
    assert participation_ratio(x) == pytest.approx(d, rel=0.02)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_participation_ratio_flat_rank_k(k: int) -> None:
    lam = np.r_[np.ones(k), np.zeros(12 - k)]
    assert participation_ratio(_with_spectrum(lam, n=100)) == pytest.approx(k, rel=1e-9)


def test_participation_ratio_matches_eigenvalue_formula() -> None:
    rng = np.random.default_rng(10)
    x = rng.normal(size=(100, 6)) @ rng.normal(size=(6, 6))
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert participation_ratio(x) == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-9)


# --------------------------------------------------------------------------- CKA


def test_cka_invariances() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x + 5.0) == pytest.approx(1.0, abs=1e-12)


def test_cka_independent_noise_small_and_symmetric() -> None:
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(2000, 10)), rng.normal(size=(2000, 15))
    value = linear_cka(x, y)
    assert 0.0 <= value < 0.05
    assert linear_cka(y, x) == pytest.approx(value, abs=1e-12)


def _gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(0), y - y.mean(0)
    kx, ky = xc @ xc.T, yc @ yc.T
    return float((kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky)))


def test_cka_gram_and_feature_forms_agree() -> None:
    rng = np.random.default_rng(13)
    x = rng.normal(size=(30, 5))
    y = x @ rng.normal(size=(5, 40)) + rng.normal(size=(30, 40))
    assert linear_cka(x, y) == pytest.approx(_gram_cka(x, y), abs=1e-12)  # D1 + D2 > N
    assert linear_cka(x, y[:, :10]) == pytest.approx(_gram_cka(x, y[:, :10]), abs=1e-12)
    assert 0.05 < linear_cka(x, y) < 0.999


def test_cka_errors() -> None:
    rng = np.random.default_rng(14)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(rng.normal(size=(10, 3)), rng.normal(size=(11, 3)))
    with pytest.raises(ValueError, match="zero variance"):
        linear_cka(rng.normal(size=(10, 3)), np.ones((10, 2)))


# --------------------------------------------------------------------------- inputs, bundle


def test_torch_input_and_float32() -> None:
    rng = np.random.default_rng(15)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_(True)
    assert participation_ratio(t) == pytest.approx(participation_ratio(x.astype(np.float64)))
    assert linear_cka(t, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros(5), "2-D"),
        (np.zeros((2, 3, 4)), "2-D"),
        (np.zeros((1, 4)), "N=2"),
        (np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 3.0]]), "NaN or Inf"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or Inf"),
        (np.array([["a", "b"], ["c", "d"]]), "float64"),
    ],
)
def test_input_validation(bad: np.ndarray, match: str) -> None:
    for fn in (explained_variance_ratio, participation_ratio, evr_slope,
               mean_feature_correlation, describe_features):
        with pytest.raises(ValueError, match=match):
            fn(bad)
    with pytest.raises(ValueError, match=match):
        linear_cka(bad, bad)


def test_single_feature_and_all_constant() -> None:
    with pytest.raises(ValueError, match="D=2"):
        mean_feature_correlation(np.arange(6.0).reshape(6, 1))
    for fn in (explained_variance_ratio, participation_ratio, evr_slope):
        with pytest.raises(ValueError, match="all features are constant"):
            fn(np.ones((6, 3)))


def test_describe_features_consistent() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(size=(120, 10)) @ rng.normal(size=(10, 10))
    out = describe_features(x)
    assert tuple(out) == DESCRIBE_KEYS
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert out["mean_feature_correlation"] == pytest.approx(mean_feature_correlation(x))
    assert out["evr_slope"] == pytest.approx(evr_slope(x))
    assert out["participation_ratio"] == pytest.approx(participation_ratio(x))
    assert out["explained_variance_first"] == pytest.approx(explained_variance_ratio(x)[0])
