"""Cross-fitted evaluation: every image is a test image once, never in its own training bank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimlib import probes
from slimlib import sweeping as sweep_mod
from slimlib.book.runs import n_test_images, n_test_sentence
from slimlib.probes import _crossfit as crossfit
from slimlib.probes._inputs import macro_accuracy
from slimlib.sweeping import SweepData, decode
from tests.features.test_extract import TinyEncoder, make_split, simple_prepare
from tests.patching import patch_features
from tests.sweeping.test_run import ScoreCounter


@pytest.fixture(autouse=True)
def _stand_in_prepare(monkeypatch):
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)
    patch_features(monkeypatch, "preparation_notes", lambda dataset, spec: [])


def test_folds_are_stratified_seeded_and_cover_every_image():
    y = np.repeat(np.arange(4), [10, 7, 5, 13])
    ids = crossfit.fold_ids(y, folds=5, seed=3)
    assert ids.shape == y.shape and set(ids) == set(range(5))
    for c in range(4):  # each class spread over the folds as evenly as possible
        counts = np.bincount(ids[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(ids, crossfit.fold_ids(y, folds=5, seed=3))
    assert not np.array_equal(ids, crossfit.fold_ids(y, folds=5, seed=4))
    assert crossfit.bank_size(ids) == round(35 * 4 / 5)
    with pytest.raises(ValueError, match="single-label"):
        crossfit.fold_ids(np.eye(3)[[0, 1, 2, 0, 1]], folds=2)
    with pytest.raises(ValueError, match="folds"):
        crossfit.fold_ids(y, folds=1)


def test_no_image_is_in_its_own_training_bank():
    # random features, random labels: only leakage (an image finding itself) could score high
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 16)), rng.integers(0, 4, size=200)
    ids = crossfit.fold_ids(y, folds=5, seed=0)
    value, labels, preds = crossfit.crossfit_outcomes("knn", x, y, ids, k=1)
    assert value < 0.45  # chance is 0.25; with leakage k=1 would give 1.0
    leaked = probes.knn_score(x, y, x, y, k=1)
    assert leaked == 1.0


def test_crossfit_outcomes_equal_a_manual_fold_loop():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 5))
    y = np.repeat(np.arange(3), 12)
    x = centres[y] + rng.normal(scale=1.5, size=(36, 5))
    ids = crossfit.fold_ids(y, folds=4, seed=0)
    for protocol in ("knn", "linear"):
        value, labels, preds = crossfit.crossfit_outcomes(protocol, x, y, ids, seed=2,
                                                          train_fraction=0.7)
        manual = np.empty_like(y)
        for f in range(4):
            held = ids == f
            _, _, p = probes.score_outcomes(protocol, x[~held], y[~held], x[held], y[held],
                                            seed=2, train_fraction=0.7)
            manual[held] = p
        np.testing.assert_array_equal(preds, manual)
        np.testing.assert_array_equal(labels, y)
        assert value == macro_accuracy(y, preds) and 0 < value < 1


def test_crossfitted_sweep_rows(tmp_path, monkeypatch):
    every = make_split("test", 7)  # 21 images, 3 classes
    wrong = every.labels.clone()
    wrong[[0, 8, 15]] = torch.tensor([2, 0, 1])  # errors, so the value is not trivially 1
    every = type(every)(**{**every.__dict__, "labels": wrong})
    data = SweepData.crossfitted(every, folds=3, seed=0, name="toy-cf")
    args = dict(widths=(0.5, 1.0), seeds=(0, 1), protocols=("knn", "linear"),
                out=tmp_path / "s.csv", progress=False, train_fraction=0.8)
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, [data], **args)
    probe = table[table.protocol != "features"]
    assert len(probe) == 2 * 2 * 2
    assert (probe.n_test == 21).all() and (probe.n_train == 14).all()
    assert all("cross-fitted: 3 stratified folds" in n for n in table.notes)
    for row in probe.itertuples():
        out = decode(row.outcomes)
        np.testing.assert_array_equal(out.labels, wrong.numpy())
        assert row.value == macro_accuracy(out.labels, out.preds)
    assert (probe.value < 1).all()
    # the fixed split of the same images is another dataset fingerprint
    fixed = sweep_mod.sweep({"tiny": TinyEncoder()}, {"toy-cf": (every, every)},
                            **{**args, "out": tmp_path / "f.csv"})
    assert fixed.data_fp.iloc[0] != table.data_fp.iloc[0]
    # resumed: nothing recomputed
    counter = ScoreCounter(monkeypatch)
    again = sweep_mod.sweep({"tiny": TinyEncoder()}, [data], **args)
    assert counter.calls == 0 and again.value.tolist() == table.value.tolist()
    # what a chapter prints
    info = n_test_images(table)
    assert info.to_dict("records") == [{"dataset": "toy-cf", "n_test": "21", "n_train": "14",
                                        "evaluation": "cross-fitted, 3 folds", "classes": 3}]
    assert "toy-cf: 21 test images (cross-fitted, 3 folds; training bank 14 per fold)" in \
        n_test_sentence(table)


def test_crossfitted_pair_is_still_a_fixed_split():
    train, test = make_split("train", 4), make_split("test", 2)
    every = make_split("test", 6)
    pair = crossfit.CrossFitted(train, test, crossfit.CrossFit(every, folds=3))
    a, b = pair
    assert a is train and b is test and pair.crossfit.dataset is every
    [data] = sweep_mod.as_datasets({"x": pair})
    assert data.folds == 3 and data.n_test == len(every) and data.test is every


def test_too_few_images_per_class_say_what_to_do():
    with pytest.raises(ValueError, match="lower folds="):
        crossfit.fold_ids(np.repeat(np.arange(3), 2), folds=5)
