"""Per-image outcomes in sweep rows: every single-label probe row carries the true and predicted
class of each test image, and its ``value`` is their macro accuracy."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from slimlib import probes
from slimlib import sweeping as sweep_mod
from slimlib.probes._inputs import macro_accuracy
from slimlib.sweeping.outcomes import decode
from tests.features.test_extract import TinyEncoder, make_split, simple_prepare
from tests.patching import patch_features


@pytest.fixture(autouse=True)
def _stand_in_prepare(monkeypatch):
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)
    patch_features(monkeypatch, "preparation_notes", lambda dataset, spec: [])


def _macro(out) -> float:
    return macro_accuracy(out.labels, out.preds)


def test_probe_outcomes_match_the_score():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6))
    y_train, y_test = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 7)
    x_train = centres[y_train] + rng.normal(scale=1.2, size=(40, 6))
    x_test = centres[y_test] + rng.normal(scale=1.2, size=(28, 6))
    for protocol in ("knn", "linear"):
        for seed in (0, 3):
            value, labels, preds = probes.score_outcomes(
                protocol, x_train, y_train, x_test, y_test, seed=seed, train_fraction=0.7)
            assert value == probes.score(protocol, x_train, y_train, x_test, y_test, seed=seed,
                                         train_fraction=0.7)
            np.testing.assert_array_equal(labels, y_test)
            assert value == macro_accuracy(labels, preds)
            assert 0.0 < value < 1.0  # a noisy problem: the check is not trivially 1.0
    multi = np.eye(4)[y_train].astype(np.uint8)
    value, labels, preds = probes.score_outcomes("knn", x_train, multi, x_test,
                                                 np.eye(4)[y_test].astype(np.uint8))
    assert labels is None and preds is None and 0.0 < value <= 1.0


def test_every_single_label_probe_row_carries_its_outcomes(tmp_path):
    train, test = make_split("train", 8), make_split("test", 5)
    wrong = test.labels.clone()
    wrong[[0, 6, 7, 12]] = torch.tensor([1, 2, 0, 0])  # mislabelled test images: errors to count
    test = dataclasses.replace(test, labels=wrong)
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)], widths=(0.25, 1.0),
                            seeds=(0, 1), protocols=("knn", "linear"), out=tmp_path / "s.csv",
                            progress=False, train_fraction=0.6)
    assert list(table.columns)[-1] == "outcomes"
    probe = table[table.protocol != "features"]
    assert len(probe) == 2 * 2 * 2
    for row in probe.itertuples():
        out = decode(row.outcomes)
        assert out is not None and out.n == row.n_test == len(test)
        np.testing.assert_array_equal(out.labels, test.labels.numpy())
        assert row.value == pytest.approx(_macro(out), abs=1e-15)
    assert (table[table.protocol == "features"].outcomes == "").all()
    # the table on disk says the same as the returned frame
    again = sweep_mod.read_table(tmp_path / "s.csv")
    assert again.outcomes.tolist() == table.outcomes.tolist()
    assert (probe.value < 1).all()  # the equality above is checked on rows with errors


def test_multilabel_rows_have_no_outcomes(tmp_path):
    train, test = make_split("train", 6, seed=5), make_split("test", 3, seed=5)
    multi = [dataclasses.replace(d, name="toy-multi",
                                 labels=torch.nn.functional.one_hot(d.labels, 3).float())
             for d in (train, test)]
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, {"b": tuple(multi)}, widths=(1.0,),
                            seeds=(0,), out=tmp_path / "s.csv", metrics=False, progress=False)
    assert table.metric.tolist() == ["map_macro"] and table.outcomes.tolist() == [""]


def test_deterministic_rows_share_outcomes(tmp_path):
    train, test = make_split("train", 8), make_split("test", 4)
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)], widths=(0.5,),
                            seeds=(0, 1), out=tmp_path / "s.csv", metrics=False,
                            progress=False)
    assert table.outcomes.nunique() == 1 and decode(table.outcomes.iloc[0]).n == len(test)


def test_table_without_the_outcomes_column_still_reads_and_resumes(tmp_path):
    path = tmp_path / "s.csv"
    train, test = make_split("train", 8), make_split("test", 4)
    args = dict(widths=(0.5, 1.0), seeds=(0,), out=path, metrics=False, progress=False)
    sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)], **args)
    # rewrite it as a table of the previous version: no outcomes column
    lines = path.read_text().splitlines()
    legacy = [line.rsplit(",", 1)[0] for line in lines]
    assert legacy[0].split(",") == list(sweep_mod.COLUMNS[:-1])
    path.write_text("\n".join(legacy) + "\n")
    old = sweep_mod.read_table(path, repair=False)
    assert list(old.columns) == list(sweep_mod.COLUMNS)
    assert (old.outcomes == "").all() and len(old) == 2
    assert path.read_text().splitlines()[0] == legacy[0]  # repair=False left the file alone
    # a sweep resumes it: finished rows are skipped, the new width is appended after an upgrade
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # upgrading is not a repair of a damaged file
        table = sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)],
                                **{**args, "widths": (0.25, 0.5, 1.0)})
    assert path.read_text().splitlines()[0].split(",") == list(sweep_mod.COLUMNS)
    assert table.width.tolist() == [0.25, 0.5, 1.0]
    assert table.outcomes.tolist()[1:] == ["", ""]  # old rows: no outcomes, kept as they were
    assert decode(table.outcomes.iloc[0]).n == len(test)


def test_random_init_controls_carry_outcomes(tmp_path):
    """The random-init controls are sweep rows too (chapters.controls_for sweeps them)."""
    from slimlib.sweeping import controls

    nets = controls.random_init_models("rs-moco-tiny", (0,))
    train, test = make_split("train", 6), make_split("test", 3)
    table = sweep_mod.sweep(nets, [(train, test)], widths=(0.5, 1.0), seeds=(0,),
                            out=tmp_path / "s.csv", metrics=False, progress=False)
    assert list(table.model.unique()) == list(nets)
    for row in table.itertuples():
        out = decode(row.outcomes)
        assert out.n == len(test) and row.value == _macro(out)
