"""Intervals from the test images and probe draws: pairing, clustering, merged widths."""

import numpy as np
import pandas as pd
import pytest

from slimlib.sweeping.intervals import bootstrap, interval, merge_identical_widths, pooled
from slimlib.sweeping.outcomes import Outcomes, decode, encode


def _outcomes(labels, p_correct, rng):
    labels = np.asarray(labels)
    wrong = (labels + 1) % (labels.max() + 1)
    preds = np.where(rng.random(labels.size) < p_correct, labels, wrong)
    return Outcomes(labels, preds)


def test_encode_decode_round_trip_any_class_count():
    rng = np.random.default_rng(0)
    for n_classes in (2, 21, 37, 1000):
        labels = rng.integers(0, n_classes, 300)
        preds = rng.integers(0, n_classes, 300)
        out = decode(encode(labels, preds))
        assert np.array_equal(out.labels, labels) and np.array_equal(out.preds, preds)
    assert decode("") is None and decode(None) is None and decode(float("nan")) is None
    with pytest.raises(ValueError, match="not an outcomes cell"):
        decode("2:abc:de")
    with pytest.raises(ValueError, match=">= 0"):
        encode([-1], [0])


def test_observed_value_is_macro_accuracy():
    labels = np.array([0, 0, 0, 0, 1, 1])
    preds = np.array([0, 0, 0, 1, 0, 0])            # class 0: 3/4, class 1: 0/2
    obs, draws = bootstrap({"a": [Outcomes(labels, preds)]}, n_boot=50)
    assert obs["a"] == pytest.approx(0.375)
    assert draws["a"].shape == (50,)


def test_paired_difference_is_narrower_than_unpaired():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 30)
    a = _outcomes(labels, 0.7, rng)
    # b agrees with a on almost every image: a paired difference is near zero and tight
    flip = rng.random(labels.size) < 0.05
    b = Outcomes(labels, np.where(flip, labels, a.preds))
    _, paired = bootstrap({"a": [a], "b": [b]}, n_boot=2000, seed=0)
    _, da = bootstrap({"a": [a]}, n_boot=2000, seed=1)
    _, db = bootstrap({"b": [b]}, n_boot=2000, seed=2)
    lo_p, hi_p = interval(paired["b"] - paired["a"])
    lo_u, hi_u = interval(db["b"] - da["a"])
    assert hi_p - lo_p < 0.5 * (hi_u - lo_u)


def test_pairing_refuses_other_images():
    rng = np.random.default_rng(2)
    a = _outcomes(np.repeat(np.arange(3), 5), 0.8, rng)
    b = _outcomes(np.repeat(np.arange(3), 6), 0.8, rng)
    with pytest.raises(ValueError, match="other test images"):
        bootstrap({"a": [a], "b": [b]})


def test_interval_widens_with_fewer_images():
    rng = np.random.default_rng(3)
    small = _outcomes(np.repeat(np.arange(10), 5), 0.7, rng)
    large = _outcomes(np.repeat(np.arange(10), 200), 0.7, rng)
    ws = np.diff(interval(bootstrap({"x": [small]})[1]["x"]))[0]
    wl = np.diff(interval(bootstrap({"x": [large]})[1]["x"]))[0]
    assert ws > 3 * wl


def test_pooled_interval_does_not_shrink_when_widths_are_added():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 20)
    runs = []
    for p in (0.5, 0.9, 0.7):
        full = _outcomes(labels, 0.9, rng)
        runs.append({"full": [full], "small": [_outcomes(labels, p, rng)]})
    one = pooled(runs, lambda v: v["small"] / v["full"], n_boot=2000)
    # the same runs with four more (identical-information) widths each: still three clusters
    more = [dict(r, **{f"w{i}": r["small"] for i in range(4)}) for r in runs]
    stat = lambda v: np.mean([v[k] for k in v if k != "full"], axis=0) / v["full"]  # noqa: E731
    many = pooled(more, stat, n_boot=2000)
    assert many.n_runs == one.n_runs == 3
    assert (many.hi - many.lo) >= 0.9 * (one.hi - one.lo)
    # the run-to-run spread dominates: far wider than one run's image interval
    single = pooled(runs[:1], lambda v: v["small"] / v["full"], n_boot=2000)
    assert one.hi - one.lo > single.hi - single.lo


def test_seed_draws_add_spread():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(5), 40)
    seeds = [_outcomes(labels, p, rng) for p in (0.4, 0.9)]
    _, two = bootstrap({"x": seeds}, n_boot=2000)
    _, one = bootstrap({"x": seeds[:1]}, n_boot=2000)
    assert np.std(two["x"]) > np.std(one["x"])


def test_identical_widths_are_one_point():
    rows = pd.DataFrame({
        "model": "m", "dataset": "d", "protocol": "knn", "metric": "acc", "seed": 0,
        "parts": "attn+ffn", "order": "first", "scale": "slimmed", "train_fraction": 1.0,
        "width": [0.001, 0.002, 0.003, 0.5, 1.0],
        "d_k": [1, 1, 1, 8, 16], "d_h": [1, 1, 1, 32, 64], "value": [0.3, 0.3, 0.3, 0.8, 0.9],
    })
    merged = merge_identical_widths(rows)
    assert merged["width"].tolist() == [0.001, 0.5, 1.0]
    assert merged["n_widths"].tolist() == [3, 1, 1]
    assert merged["widths"].iloc[0] == (0.001, 0.002, 0.003)
    # random order: the kept indices differ, so nothing is merged
    rnd = merge_identical_widths(rows.assign(order="random"))
    assert len(rnd) == len(rows)
