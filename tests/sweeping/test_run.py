"""Tests of slimlib.sweep: the tidy table, resuming, interruption, retention."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from slimlib import probes
from slimlib import sweeping as sweep_mod
from slimlib._validation import slimmed_dim
from slimlib.features import _extract as features
from slimlib.slimming import slim
from tests.features.test_extract import (
    EncodeCounter,
    TinyEncoder,
    make_split,
    simple_prepare,
    tiny_spec,
)
from tests.patching import patch_features

WIDTHS = (0.25, 0.5, 1.0)
_REAL_PREPARE, _REAL_NOTES = features.prepare_dataset, features.preparation_notes
BRIEF_COLUMNS = ("model", "dataset", "synthetic", "protocol", "seed", "width", "parts", "order",
                 "scale", "d_k", "d_h", "flops", "rel_compute", "params", "metric", "value",
                 "runtime_s", "n_train", "n_test", "notes")
COMPARE = ["model", "dataset", "protocol", "metric", "seed", "width", "d_k", "d_h", "flops",
           "rel_compute", "params", "value", "n_train", "n_test"]


@pytest.fixture(autouse=True)
def _stand_in_prepare(monkeypatch):
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)
    patch_features(monkeypatch, "preparation_notes", lambda dataset, spec: [])


@pytest.fixture
def toy():
    return make_split("train", per_class=8), make_split("test", per_class=4)


def run(toy, out, **kw):
    args = dict(widths=WIDTHS, seeds=(0, 1), protocols=("knn",), out=out, progress=False)
    args.update(kw)
    models = args.pop("models", {"tiny": TinyEncoder()})
    return sweep_mod.sweep(models, [toy], **args)


class ScoreCounter:
    """Counts probe evaluations; optionally raises after ``fail_after`` of them."""

    def __init__(self, monkeypatch, fail_after: int | None = None) -> None:
        self.calls, self.fail_after = 0, fail_after
        self._orig = sweep_mod._run._score
        # the orchestration module looks the scorer up (slimlib.sweeping re-exports it)
        monkeypatch.setattr(sweep_mod._run, "_score", self)

    def __call__(self, *args, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated kill")
        self.calls += 1
        return self._orig(*args, **kwargs)


# ----------------------------------------------------------------------------- table


def test_table_has_every_column_and_row(toy, tmp_path):
    table = run(toy, tmp_path / "s.csv", protocols=("knn", "linear"))
    assert list(table.columns) == list(sweep_mod.COLUMNS)
    assert set(BRIEF_COLUMNS) <= set(table.columns)
    # 3 widths x (2 seeds x 2 protocols + 4 feature metrics)
    assert len(table) == 3 * (2 * 2 + 4)
    probe = table[table.protocol != "features"]
    assert set(probe.metric) == {"accuracy_macro"}
    assert sorted(probe.seed.unique()) == [0, 1]
    feats = table[table.protocol == "features"]
    assert set(feats.metric) == set(sweep_mod.FEATURE_METRICS)
    assert set(feats.seed) == {sweep_mod.NO_SEED}
    assert all("test features" in n for n in feats.notes)
    assert table.synthetic.all() and (table.n_train == 24).all() and (table.n_test == 12).all()
    assert set(table.parts) == {"attn+ffn"} and set(table.order) == {"first"}
    for width, group in table.groupby("width"):
        assert set(group.d_k) == {slimmed_dim(width, 16)}  # 48 / 3 heads
        assert set(group.d_h) == {slimmed_dim(width, 192)}
    per_width = table.groupby("width")[["flops", "params", "rel_compute"]].first()
    assert per_width.flops.is_monotonic_increasing and per_width.params.is_monotonic_increasing
    assert per_width.rel_compute.loc[1.0] == 1.0 and per_width.rel_compute.iloc[0] < 1.0
    cka = feats[feats.metric == "cka_full"].set_index("width").value
    assert cka.loc[1.0] == pytest.approx(1.0) and 0.0 <= cka.loc[0.25] <= 1.0
    assert table.attrs["timings"]["extract"] > 0 and table.attrs["path"].endswith("s.csv")


def test_values_match_an_independent_evaluation(toy, tmp_path):
    enc = TinyEncoder()
    table = run(toy, tmp_path / "s.csv", models={"tiny": enc}, widths=(0.25, 1.0), seeds=(0,),
                metrics=False)
    train, test = toy
    x_tr, x_te = simple_prepare(train, enc.spec), simple_prepare(test, enc.spec)
    for width in (0.25, 1.0):
        small = slim(enc, width)
        with torch.no_grad():
            f_tr, f_te = small.eval()(x_tr).numpy(), small(x_te).numpy()
        expected = probes.knn_score(f_tr, train.labels, f_te, test.labels, k=5)
        got = table[(table.width == width) & (table.protocol == "knn")].value.item()
        assert got == pytest.approx(expected, abs=1e-9)


def test_rerun_recomputes_nothing(toy, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    first = run(toy, out, widths=(0.5, 1.0))
    encodes, scores = EncodeCounter(monkeypatch), ScoreCounter(monkeypatch)
    second = run(toy, out, widths=(0.5, 1.0))
    assert encodes.calls == 0 and scores.calls == 0
    pd.testing.assert_frame_equal(first, second)
    assert len(pd.read_csv(out)) == len(first)  # nothing appended twice


def test_lost_table_is_rebuilt_from_the_feature_cache(toy, tmp_path, monkeypatch):
    first = run(toy, tmp_path / "a.csv", widths=(0.5, 1.0))
    encodes = EncodeCounter(monkeypatch)
    second = run(toy, tmp_path / "b.csv", widths=(0.5, 1.0))
    assert encodes.calls == 0
    pd.testing.assert_frame_equal(first[COMPARE], second[COMPARE])


def test_extra_widths_only_compute_new_rows(toy, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    run(toy, out, widths=(0.5, 1.0))
    encodes = EncodeCounter(monkeypatch)
    table = run(toy, out, widths=(0.25, 0.5, 1.0))
    assert encodes.calls == 2  # train + test of width 0.25 only
    assert sorted(table.width.unique()) == [0.25, 0.5, 1.0]


def test_widths_giving_the_same_model_share_features(toy, tmp_path, monkeypatch):
    encodes = EncodeCounter(monkeypatch)
    # d_k = 16, d_h = 192: both widths keep max(1, floor(s * d)) = 1 dim everywhere
    table = run(toy, tmp_path / "s.csv", widths=(0.005, 0.01, 1.0), seeds=(0,))
    # 0.005: train + test (+ the width-1 test features as CKA reference); 0.01: none;
    # 1.0: train only
    assert encodes.calls == 2 + 1 + 0 + 1
    knn = table[table.protocol == "knn"].set_index("width").value
    assert knn.loc[0.005] == knn.loc[0.01]


def test_interrupted_run_resumes_to_identical_numbers(toy, tmp_path, monkeypatch):
    reference = run(toy, tmp_path / "ref.csv")
    monkeypatch.setenv("SLIMLIB_CACHE", str(tmp_path / "fresh-cache"))
    out = tmp_path / "s.csv"
    orig_append = sweep_mod._table._ResultFile.append
    written = []

    def append_then_die(self, rows):
        if len(written) == 7:  # width 0.25's 6 rows and width 0.5's seed-0 k-NN row are on disk
            raise KeyboardInterrupt("simulated kill")
        orig_append(self, rows)
        written.extend(rows)

    monkeypatch.setattr(sweep_mod._table._ResultFile, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        run(toy, out)
    on_disk = sweep_mod.read_table(out)
    assert len(on_disk) == 7 < len(reference)
    monkeypatch.setattr(sweep_mod._table._ResultFile, "append", orig_append)
    encodes, scores = EncodeCounter(monkeypatch), ScoreCounter(monkeypatch)
    resumed = run(toy, out)
    # only width 1.0's train features are new: width 0.5's were cached before the kill and
    # width 1.0's test features were cached as the CKA reference of width 0.25
    assert encodes.calls == 1
    assert scores.calls == 2  # k-NN at width 0.5 (its seed-1 row was lost) and at width 1.0
    pd.testing.assert_frame_equal(reference[COMPARE], resumed[COMPARE])
    assert len(sweep_mod.read_table(out)) == len(reference)


def test_partial_trailing_line_is_dropped_and_recomputed(toy, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    full = run(toy, out, widths=(0.5, 1.0))
    text = out.read_text()
    lines = text.splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-row
    with pytest.warns(RuntimeWarning, match="incomplete line"):
        partial = sweep_mod.read_table(out)
    assert len(partial) == len(full) - 1
    assert out.read_text().endswith("\n")  # repaired on disk
    encodes = EncodeCounter(monkeypatch)
    resumed = run(toy, out, widths=(0.5, 1.0))
    assert encodes.calls == 0  # the lost row's features come from the cache
    pd.testing.assert_frame_equal(full[COMPARE], resumed[COMPARE])


def test_foreign_csv_is_refused(toy, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a slimlib sweep table"):
        run(toy, out)


def test_several_datasets_and_multilabel(toy, tmp_path, monkeypatch):
    flops_calls = []
    import slimlib.measure as compute  # where the sweep looks flops up

    orig = compute.flops
    monkeypatch.setattr(compute, "flops", lambda *a: flops_calls.append(1) or orig(*a))
    train, test = make_split("train", 6, seed=5), make_split("test", 3, seed=5)
    multi = [dataclasses.replace(d, name="toy-multi",
                                 labels=torch.nn.functional.one_hot(d.labels, 3).float())
             for d in (train, test)]
    multi[0].labels[0, 1] = 1.0  # one image carries two labels
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, {"a": toy, "b": tuple(multi)},
                            widths=(0.5, 1.0), seeds=(0,), out=tmp_path / "s.csv",
                            metrics=False, progress=False)
    assert table.dataset.tolist() == ["a", "a", "b", "b"]
    assert table.metric.tolist() == ["accuracy_macro"] * 2 + ["map_macro"] * 2
    assert table.data_fp.nunique() == 2
    assert len(flops_calls) == 3  # widths 0.5, 1.0 and the full reference, once per model
    pd.testing.assert_series_equal(table.flops.iloc[:2].reset_index(drop=True),
                                   table.flops.iloc[2:].reset_index(drop=True))


# ----------------------------------------------------------------------------- errors, notes


class _NaNWhenSlim(nn.Module):
    """Produces NaN features once its FFN is narrower than the original."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TinyEncoder(name="fragile")
        self.spec = self.inner.spec

    def forward(self, x):
        f = self.inner(x)
        if self.inner.vit.blocks[0].mlp.fc1.out_features < 192:
            f = f * float("nan")
        return f


def test_nan_features_name_model_and_width(toy, tmp_path):
    with pytest.raises(ValueError, match=r"fragile.*width 0\.25"):
        run(toy, tmp_path / "s.csv", models=[_NaNWhenSlim()], widths=(1.0, 0.25))


def test_absent_class_is_noted(tmp_path):
    train = make_split("train", per_class=6)
    test = make_split("test", per_class=4, classes_present=(0, 1))
    table = sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)], widths=(1.0,), seeds=(0,),
                            out=tmp_path / "s.csv", metrics=False, progress=False)
    assert "ClassCoverageWarning" in table.notes.item()


def test_random_order_draws_per_seed(toy, tmp_path, monkeypatch):
    encodes = EncodeCounter(monkeypatch)
    table = run(toy, tmp_path / "s.csv", widths=(0.5, 1.0), order="random")
    feats = table[table.protocol == "features"]
    assert set(feats.seed) == {0, 1} and set(table.order) == {"random"}
    # width 0.5: train + test per seed; width 1 keeps every index, so both seeds and the
    # "first"-order CKA reference are one model: one train and one test extraction
    assert encodes.calls == 2 * 2 + 2
    knn = table[table.protocol == "knn"].set_index(["width", "seed"]).value
    assert knn.loc[(1.0, 0)] == knn.loc[(1.0, 1)]


@pytest.mark.parametrize("kw, match", [
    (dict(widths=(0.0, 1.0)), "width"), (dict(protocols=("svm",)), "protocol"),
    (dict(seeds=(-1,)), "seeds"), (dict(seeds=(0, 0)), "unique"), (dict(parts=("mlp",)), "parts"),
    (dict(order="middle"), "order"), (dict(train_fraction=0.0), "train_fraction"),
])
def test_invalid_arguments(toy, tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        run(toy, tmp_path / "s.csv", **kw)


def test_mismatched_splits_are_refused(tmp_path):
    train = make_split("train", per_class=2)
    test = make_split("test", per_class=2, n_classes=4)
    with pytest.raises(ValueError, match="label space"):
        sweep_mod.sweep({"tiny": TinyEncoder()}, [(train, test)], widths=(1.0,),
                        out=tmp_path / "s.csv", progress=False)


# ----------------------------------------------------------------------------- retention


def _table(rows):
    return pd.DataFrame(rows, columns=["model", "dataset", "protocol", "metric", "seed", "width",
                                       "rel_compute", "value"])


def test_retention_math():
    rows = [("m", "d", "knn", "acc", s, w, rc, v) for s, w, rc, v in [
        (0, 0.5, 0.4, 0.40), (1, 0.5, 0.4, 0.60), (0, 1.0, 1.0, 0.80), (1, 1.0, 1.0, 1.00)]]
    rows += [("m", "d", "features", "evr_slope", -1, 0.5, 0.4, -3.0),
             ("m", "d", "features", "evr_slope", -1, 1.0, 1.0, -1.0)]
    out = sweep_mod.retention(_table(rows))
    assert len(out) == 2 and set(out.protocol) == {"knn"}
    half = out[out.width == 0.5].iloc[0]
    assert half["mean"] == pytest.approx(0.5) and half["full"] == pytest.approx(0.9)
    assert half["retention"] == pytest.approx(0.5 / 0.9)
    assert half["std"] == pytest.approx(math.sqrt(0.02)) and half["n_seeds"] == 2
    assert half["rel_compute"] == pytest.approx(0.4)
    assert out[out.width == 1.0].retention.item() == 1.0
    with_feats = sweep_mod.retention(_table(rows), include_features=True)
    assert with_feats[with_feats.protocol == "features"].retention.tolist() == [3.0, 1.0]


def test_retention_groups_separately():
    rows = [(m, "d", "knn", "acc", 0, w, w, v) for m, w, v in [
        ("a", 0.5, 0.3), ("a", 1.0, 0.6), ("b", 0.5, 0.2), ("b", 1.0, 0.8)]]
    out = sweep_mod.retention(_table(rows)).set_index(["model", "width"]).retention
    assert out.loc[("a", 0.5)] == pytest.approx(0.5) and out.loc[("b", 0.5)] == pytest.approx(0.25)


def test_retention_needs_width_one():
    rows = [("m", "d", "knn", "acc", 0, 0.5, 0.4, 0.5), ("n", "d", "knn", "acc", 0, 0.5, 0.4, 0.5),
            ("n", "d", "knn", "acc", 0, 1.0, 1.0, 0.7)]
    with pytest.raises(ValueError, match="width-1 row for model=.m."):
        sweep_mod.retention(_table(rows))


def test_retention_of_a_sweep(toy, tmp_path):
    table = run(toy, tmp_path / "s.csv", widths=(0.5, 1.0), metrics=False)
    ret = sweep_mod.retention(table)
    assert len(ret) == 2
    knn = table[table.protocol == "knn"].groupby("width").value.mean()
    np.testing.assert_allclose(ret.set_index("width").retention, knn / knn.loc[1.0])


def test_top_level_names(toy, tmp_path):
    import slimlib

    assert slimlib.retention is sweep_mod.retention
    assert slimlib.sweep is sweep_mod.sweep
    table = slimlib.sweep({"tiny": TinyEncoder()}, [toy], widths=(1.0,), seeds=(0,),
                          out=tmp_path / "s.csv", metrics=False, progress=False)
    assert len(table) == 1 and table.protocol.item() == "knn"


# ----------------------------------------------------------------------------- real data


@pytest.mark.data
def test_real_eurosat_rgb_sweep(data_root, tmp_path, monkeypatch):
    data = pytest.importorskip("slimlib.data", reason="slimlib.data is not available")
    patch_features(monkeypatch, "prepare_dataset", _REAL_PREPARE)
    patch_features(monkeypatch, "preparation_notes", _REAL_NOTES)
    train = data.load("eurosat-rgb", "train", root=data_root, limit_per_class=8)
    test = data.load("eurosat-rgb", "test", root=data_root, limit_per_class=4)
    assert np.bincount(train.labels.numpy()).tolist() == [8] * 10  # stratified subset
    enc = TinyEncoder(name="tiny-rgb")
    enc.spec = dataclasses.replace(tiny_spec("tiny-rgb"), units="rgb01")  # fed 64 -> 32 px
    table = sweep_mod.sweep({"tiny-rgb": enc}, [(train, test)], widths=WIDTHS, seeds=(0,),
                            out=tmp_path / "s.csv", progress=False)
    assert len(table) == len(WIDTHS) * (1 + len(sweep_mod.FEATURE_METRICS))
    assert set(table.dataset) == {"eurosat-rgb"} and not table.synthetic.any()
    assert set(table.n_train) == {80} and set(table.n_test) == {40}
    knn = table[table.protocol == "knn"].set_index("width").value
    assert ((knn >= 0) & (knn <= 1)).all()
    x_tr = data.prepare(train, enc.spec)
    x_te = data.prepare(test, enc.spec)
    assert x_tr.shape == (80, 3, 32, 32)
    with torch.no_grad():
        f_tr, f_te = enc.eval()(x_tr).numpy(), enc(x_te).numpy()
    assert knn.loc[1.0] == pytest.approx(probes.knn_score(f_tr, train.labels, f_te, test.labels))
    assert "subset" in table.notes.iloc[0]  # the loader's note travels with every row

