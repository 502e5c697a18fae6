"""k-NN and linear probes against brute-force references and scikit-learn."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier

from slimlib import probes
from slimlib.probes import (
    METRIC_NAMES,
    ClassCoverageWarning,
    knn_predict,
    knn_score,
    linear_probe_predict,
    linear_probe_score,
    metric_name,
    score,
)
from slimlib.probes import _knn as knn_probe

# --------------------------------------------------------------------------- references


def _similarities(train_x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        tn = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
        return tn @ (q / np.linalg.norm(q))
    return -np.linalg.norm(train_x - q, axis=1)


def _ref_knn_predict(train_x, train_y, test_x, k, metric):
    """Per-sample loop: majority vote, then summed similarity, then the nearest neighbour."""
    out = []
    for q in test_x:
        s = _similarities(train_x, q, metric)
        order = np.argsort(-s, kind="stable")[:k]
        labels = train_y[order]
        counts = Counter(labels.tolist())
        top = max(counts.values())
        tied = {c for c, n in counts.items() if n == top}
        sums = {c: float(s[order][labels == c].sum()) for c in tied}
        best = max(sums.values())
        tied = {c for c in tied if sums[c] == best}
        out.append(next(lab for lab in labels.tolist() if lab in tied))
    return np.array(out)


def _ref_knn_fraction(train_x, train_y, test_x, k, metric):
    out = []
    for q in test_x:
        order = np.argsort(-_similarities(train_x, q, metric), kind="stable")[:k]
        out.append(train_y[order].mean(axis=0))
    return np.array(out)


def _blobs(n_per_class, n_classes, d, spread, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, d)) * 4
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(y.size, d))
    perm = rng.permutation(y.size)
    return x[perm], y[perm]


def _multilabel(n, k_classes, d, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k_classes)) < 0.3).astype(np.float32)
    x = y @ rng.normal(size=(k_classes, d)) + rng.normal(size=(n, d))
    return x, y


# --------------------------------------------------------------------------- k-NN single-label


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 4, 5])
def test_knn_matches_brute_force(metric: str, k: int) -> None:
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(150, 6)), rng.normal(size=(60, 6))
    train_y, test_y = rng.integers(0, 4, 150), rng.integers(0, 4, 60)
    pred = knn_predict(train_x, train_y, test_x, k=k, metric=metric)
    ref = _ref_knn_predict(train_x, train_y, test_x, k, metric)
    np.testing.assert_array_equal(pred, ref)
    # float32 inputs take the float32 path and still agree on such well-separated distances.
    pred32 = knn_predict(train_x.astype(np.float32), train_y, test_x.astype(np.float32), k=k,
                         metric=metric)
    assert (pred32 == ref).mean() >= 0.95
    value = knn_score(train_x, train_y, test_x, test_y, k=k, metric=metric)
    assert value == pytest.approx(balanced_accuracy_score(test_y, ref), abs=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_sklearn_without_ties(metric: str) -> None:
    # Two classes and odd k: no vote ties, so sklearn's KNeighborsClassifier is a reference.
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(200, 5)), rng.normal(size=(80, 5))
    train_y = (train_x[:, 0] + 0.8 * rng.normal(size=200) > 0).astype(int)
    clf = KNeighborsClassifier(n_neighbors=5, metric=metric, algorithm="brute")
    np.testing.assert_array_equal(knn_predict(train_x, train_y, test_x, metric=metric),
                                  clf.fit(train_x, train_y).predict(test_x))


def test_knn_balanced_accuracy_imbalanced_vs_sklearn() -> None:
    rng = np.random.default_rng(2)
    train_x, test_x = rng.normal(size=(300, 8)), rng.normal(size=(120, 8))
    train_y = rng.choice([3, 7, 11], size=300, p=[0.7, 0.2, 0.1])  # non-contiguous ids
    test_y = rng.choice([3, 7, 11], size=120, p=[0.7, 0.2, 0.1])
    pred = knn_predict(train_x, train_y, test_x)
    assert set(pred) <= {3, 7, 11}
    expected = balanced_accuracy_score(test_y, pred)
    assert knn_score(train_x, train_y, test_x, test_y) == pytest.approx(expected, abs=1e-12)
    assert expected != pytest.approx((pred == test_y).mean())  # macro differs from plain accuracy


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_separable_clusters_perfect(metric: str) -> None:
    x, y = _blobs(40, 5, 16, spread=0.1, seed=3)
    assert knn_score(x[:150], y[:150], x[150:], y[150:], metric=metric) == 1.0


def test_knn_vote_ties_summed_similarity_then_nearest() -> None:
    # Query at the origin; Euclidean distances are exact, so similarity = -distance exactly.
    train_x = np.array([[1.0, 0], [5.0, 0], [0, 2.0], [0, 3.0]])
    train_y = np.array([0, 0, 1, 1])
    query = np.zeros((1, 2))
    # 2-2 vote; summed similarity -6 (class 0) vs -5 (class 1): class 1 although 0 is nearest.
    assert knn_predict(train_x, train_y, query, k=4, metric="euclidean")[0] == 1
    # 2-2 vote and equal sums (-5 vs -5): the nearest neighbour's class (0, at distance 1).
    train_x[1, 0] = 4.0
    assert knn_predict(train_x, train_y, query, k=4, metric="euclidean")[0] == 0
    # Swapping the label ids does not change the rule (not "smallest id wins").
    assert knn_predict(train_x, 1 - train_y, query, k=4, metric="euclidean")[0] == 1


def test_knn_chunking_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    train_x, test_x = rng.normal(size=(100, 6)), rng.normal(size=(37, 6))
    train_y = rng.integers(0, 3, 100)
    full = knn_predict(train_x, train_y, test_x)
    monkeypatch.setattr(knn_probe, "_CHUNK_ELEMENTS", 350)  # 3 test rows per chunk
    np.testing.assert_array_equal(knn_predict(train_x, train_y, test_x), full)


def test_knn_torch_inputs_match_numpy() -> None:
    x, y = _blobs(30, 3, 8, spread=2.0, seed=5)
    ref = knn_score(x[:60], y[:60], x[60:], y[60:])
    got = knn_score(torch.from_numpy(x[:60]), torch.from_numpy(y[:60]),
                    torch.from_numpy(x[60:]), torch.from_numpy(y[60:]))
    assert got == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------- k-NN multi-label


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_multilabel_map_vs_reference(metric: str) -> None:
    x, y = _multilabel(260, 6, 10, seed=6)
    train_x, train_y, test_x, test_y = x[:200], y[:200], x[200:], y[200:]
    frac = knn_predict(train_x, train_y, test_x, metric=metric)
    ref = _ref_knn_fraction(train_x, train_y, test_x, 5, metric)
    np.testing.assert_allclose(frac, ref, atol=1e-6)
    expected = average_precision_score(test_y, ref, average="macro")
    assert knn_score(train_x, train_y, test_x, test_y, metric=metric) == pytest.approx(expected)
    assert expected > 0.5  # informative features: well above the ~0.3 prevalence


def test_knn_multilabel_class_without_test_positive_excluded() -> None:
    x, y = _multilabel(200, 5, 8, seed=7)
    y_test = y[150:].copy()
    y_test[:, 2] = 0
    with pytest.warns(ClassCoverageWarning, match=r"\[2\] have no positive test"):
        value = knn_score(x[:150], y[:150], x[150:], y_test)
    frac = _ref_knn_fraction(x[:150], y[:150], x[150:], 5, "cosine")
    keep = [0, 1, 3, 4]
    assert value == pytest.approx(
        average_precision_score(y_test[:, keep], frac[:, keep], average="macro"))


def test_knn_multilabel_perfect() -> None:
    rng = np.random.default_rng(8)
    y = np.eye(4)[rng.integers(0, 4, 120)]
    x = y @ (rng.normal(size=(4, 12)) * 5) + 0.01 * rng.normal(size=(120, 12))
    assert knn_score(x[:80], y[:80], x[80:], y[80:]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- seeds and coverage


def test_seed_semantics() -> None:
    x, y = _blobs(40, 4, 8, spread=12.0, seed=9)
    tr_x, tr_y, te_x, te_y = x[:120], y[:120], x[120:], y[120:]
    full = {knn_score(tr_x, tr_y, te_x, te_y, seed=s) for s in range(5)}
    assert len(full) == 1  # train_fraction=1: deterministic, seed-independent
    sub = [knn_score(tr_x, tr_y, te_x, te_y, seed=s, train_fraction=0.3) for s in range(5)]
    assert len(set(sub)) > 1  # different subsets
    assert knn_score(tr_x, tr_y, te_x, te_y, seed=3, train_fraction=0.3) == sub[3]


def test_subsample_stratified_and_seeded() -> None:
    y = np.repeat([0, 1, 2], [50, 20, 3])
    idx = probes.subsample(y, 0.5, seed=1)
    assert np.bincount(y[idx]).tolist() == [25, 10, 2]  # round(0.5·n_c), at least 1 per class
    assert np.array_equal(idx, probes.subsample(y, 0.5, seed=1))
    assert not np.array_equal(idx, probes.subsample(y, 0.5, seed=2))
    assert probes.subsample(y, 1.0, seed=1) is None
    assert np.bincount(y[probes.subsample(y, 0.01, seed=0)]).tolist() == [1, 1, 1]
    multi = np.zeros((40, 3), dtype=np.uint8)
    assert probes.subsample(multi, 0.25, seed=0).size == 10


def test_class_coverage_warnings() -> None:
    rng = np.random.default_rng(10)
    train_x, test_x = rng.normal(size=(60, 4)), rng.normal(size=(30, 4))
    train_y = rng.integers(0, 3, 60)
    test_y = rng.integers(0, 2, 30)  # class 2 absent from test
    with pytest.warns(ClassCoverageWarning, match=r"\[2\] have no test samples"):
        knn_score(train_x, train_y, test_x, test_y)
    test_y = rng.integers(0, 3, 30)
    test_y[0] = 9  # class 9 absent from train
    with pytest.warns(ClassCoverageWarning, match=r"\[9\] have no training samples"):
        knn_score(train_x, train_y, test_x, test_y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        knn_score(train_x, train_y, test_x, rng.integers(0, 3, 30))  # full coverage: silent


# --------------------------------------------------------------------------- linear probe


def test_linear_probe_separable() -> None:
    x, y = _blobs(50, 4, 24, spread=0.5, seed=11)
    assert linear_probe_score(x[:150], y[:150], x[150:], y[150:]) == pytest.approx(1.0)


def test_linear_probe_random_labels_chance() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(1200, 16))
    y = rng.integers(0, 4, 1200)
    value = linear_probe_score(x[:800], y[:800], x[800:], y[800:])
    assert abs(value - 0.25) < 0.08
    ym = (rng.random((1200, 5)) < 0.3).astype(np.float32)
    value = linear_probe_score(x[:800], ym[:800], x[800:], ym[800:])
    assert abs(value - ym[800:].mean()) < 0.08  # AP of a random ranking ≈ prevalence


def test_linear_probe_matches_sklearn_multinomial() -> None:
    x, y = _blobs(60, 3, 10, spread=10.0, seed=13)
    tr_x, tr_y, te_x = x[:120], y[:120] * 2 + 1, x[120:]  # class ids 1, 3, 5
    l2 = 1e-2
    mean, std = tr_x.mean(0), tr_x.std(0)
    clf = LogisticRegression(C=1 / (l2 * len(tr_y)), tol=1e-10, max_iter=10000)
    ref = clf.fit((tr_x - mean) / std, tr_y).predict((te_x - mean) / std)
    pred = linear_probe_predict(tr_x, tr_y, te_x, l2=l2)
    assert (pred == ref).mean() >= 0.98
    assert 0.6 < (ref == y[120:] * 2 + 1).mean() < 1.0  # a non-trivial problem


def test_linear_probe_matches_sklearn_one_vs_rest() -> None:
    x, y = _multilabel(300, 4, 8, seed=14)
    tr_x, tr_y, te_x = x[:200], y[:200], x[200:]
    l2 = 1e-2
    mean, std = tr_x.mean(0), tr_x.std(0)
    ref = np.column_stack([
        LogisticRegression(C=1 / (l2 * 200), tol=1e-10, max_iter=10000)
        .fit((tr_x - mean) / std, tr_y[:, c]).predict_proba((te_x - mean) / std)[:, 1]
        for c in range(4)
    ])
    np.testing.assert_allclose(linear_probe_predict(tr_x, tr_y, te_x, l2=l2), ref, atol=2e-3)


def test_linear_probe_deterministic_and_seeded() -> None:
    x, y = _blobs(40, 3, 12, spread=10.0, seed=15)
    tr_x, tr_y, te_x, te_y = x[:90], y[:90], x[90:], y[90:]
    assert len({linear_probe_score(tr_x, tr_y, te_x, te_y, seed=s) for s in range(3)}) == 1
    a = linear_probe_score(tr_x, tr_y, te_x, te_y, seed=1, train_fraction=0.5)
    assert a == linear_probe_score(tr_x, tr_y, te_x, te_y, seed=1, train_fraction=0.5)


def test_linear_probe_single_train_class() -> None:
    rng = np.random.default_rng(16)
    with pytest.warns(ClassCoverageWarning):
        value = linear_probe_score(rng.normal(size=(20, 3)), np.zeros(20, int),
                                   rng.normal(size=(10, 3)), np.r_[np.zeros(5), np.ones(5)])
    assert value == pytest.approx(0.5)  # class 0 always right, class 1 never


# --------------------------------------------------------------------------- dispatch, errors


def test_score_dispatch_and_metric_name() -> None:
    x, y = _blobs(30, 3, 8, spread=10.0, seed=17)
    args = (x[:60], y[:60], x[60:], y[60:])
    assert score("knn", *args, seed=0, k=3) == knn_score(*args, k=3)
    assert score("linear", *args, seed=0) == linear_probe_score(*args)
    assert metric_name(y) == METRIC_NAMES[0] == "accuracy_macro"
    assert metric_name(np.zeros((4, 3))) == METRIC_NAMES[1] == "map_macro"
    with pytest.raises(ValueError, match="protocol must be one of"):
        score("svm", *args)
    with pytest.raises(ValueError, match="labels must be"):
        metric_name(np.zeros((2, 2, 2)))


def _data():
    rng = np.random.default_rng(18)
    return rng.normal(size=(20, 4)), rng.integers(0, 2, 20), rng.normal(size=(8, 4)), \
        rng.integers(0, 2, 8)


@pytest.mark.parametrize("fn", [knn_score, linear_probe_score])
def test_error_paths_common(fn) -> None:
    tr_x, tr_y, te_x, te_y = _data()
    nan_x = tr_x.copy()
    nan_x[3, 1] = np.nan
    inf_x = te_x.copy()
    inf_x[0, 0] = np.inf
    cases = [
        ((tr_x, tr_y[:-1], te_x, te_y), "train_x has 20 samples but train_y has 19"),
        ((tr_x, tr_y, te_x, te_y[:5]), "test_x has 8 samples but test_y has 5"),
        ((nan_x, tr_y, te_x, te_y), "train_x contains NaN or Inf values in 1 of 20"),
        ((tr_x, tr_y, inf_x, te_y), "test_x contains NaN or Inf"),
        ((tr_x, tr_y, te_x[:, :3], te_y), "same feature width"),
        ((tr_x[:, 0], tr_y, te_x, te_y), "2-D"),
        ((tr_x, tr_y, te_x, np.eye(2)[te_y]), "both be single-label"),
        ((tr_x, np.eye(2)[tr_y], te_x, np.eye(3)[te_y]), "same number of classes"),
        ((tr_x, np.eye(2)[tr_y] * 2, te_x, np.eye(2)[te_y]), "values 0 and 1"),
        ((tr_x, tr_y + 0.5, te_x, te_y), "integer class ids"),
        ((tr_x, tr_y.astype(str), te_x, te_y), "integer class ids"),
        ((tr_x, np.zeros((20, 2, 2)), te_x, te_y), r"\(N,\) class ids or \(N, K\)"),
        ((tr_x, np.eye(2)[tr_y], te_x, np.zeros((8, 2))), "no class has a positive test"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            fn(*args)
    for kw, match in [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
                      ({"train_fraction": 0.0}, "train_fraction"),
                      ({"train_fraction": 1.5}, "train_fraction")]:
        with pytest.raises(ValueError, match=match):
            fn(tr_x, tr_y, te_x, te_y, **kw)


def test_error_paths_knn_and_linear_specific() -> None:
    tr_x, tr_y, te_x, te_y = _data()
    with pytest.raises(ValueError, match="k=21 is larger than the training set"):
        knn_score(tr_x, tr_y, te_x, te_y, k=21)
    with pytest.raises(ValueError, match="k=11 is larger than the training set \\(10"):
        knn_score(tr_x, tr_y, te_x, te_y, k=11, train_fraction=0.5)
    for bad_k in (0, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            knn_score(tr_x, tr_y, te_x, te_y, k=bad_k)
    with pytest.raises(ValueError, match="metric must be one of"):
        knn_score(tr_x, tr_y, te_x, te_y, metric="manhattan")
    with pytest.raises(ValueError, match="k=21"):
        knn_predict(tr_x, tr_y, te_x, k=21)
    with pytest.raises(ValueError, match="l2 must be a positive"):
        linear_probe_score(tr_x, tr_y, te_x, te_y, l2=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        linear_probe_predict(tr_x, tr_y, te_x, max_iter=0)
