"""The sweep package: same public names as the old module, one canonical input form."""

from __future__ import annotations

import pytest
import torch

from slimlib import sweeping
from slimlib.sweeping import SweepData, as_datasets, as_models
from tests.features.test_extract import TinyEncoder, make_split, simple_prepare
from tests.patching import patch_features

OLD_PUBLIC = ("sweep", "retention", "read_table", "COLUMNS", "KEY_COLUMNS", "FEATURE_METRICS",
              "NO_SEED", "quarantine_path")


def test_package_exports_the_names_and_keeps_its_modules_private():
    for name in OLD_PUBLIC:
        assert hasattr(sweeping, name), name
    from slimlib import sweep as top_sweep

    assert top_sweep is sweeping.sweep
    assert sweeping._run._score is sweeping._probing._score
    assert {"_table", "_inputs", "_run", "_analysis"} <= set(vars(sweeping))
    assert not {"table", "inputs", "run", "analysis"} & set(vars(sweeping))


@pytest.fixture
def splits():
    return make_split("train", per_class=4), make_split("test", per_class=2)


def test_each_accepted_shape_has_its_converter(splits):
    train, test = splits
    from_pair = as_datasets((train, test))
    assert [type(d) for d in from_pair] == [SweepData]
    assert from_pair[0].name == train.name and from_pair[0].n_train == len(train.labels)
    named = as_datasets({"toy": (train, test)})
    assert named[0].name == "toy" and named[0].train is train
    x, y = torch.zeros(6, 3, 8, 8), torch.zeros(6, dtype=torch.int64)
    prepared = as_datasets({"p": ((x, y), (x[:2], y[:2]))})
    direct = SweepData.from_prepared("p", (x, y), (x[:2], y[:2]))
    assert (prepared[0].name, prepared[0].train[0]) == (direct.name, direct.train[0])
    assert prepared[0].synthetic is False and prepared[0].n_test == 2
    canonical = [SweepData.from_splits(train, test, name="c")]
    assert as_datasets(canonical)[0] is canonical[0]  # the canonical form passes through
    assert as_datasets(canonical[0])[0] is canonical[0]
    with pytest.raises(ValueError, match="need a name"):
        as_datasets([((x, y), (x, y))])
    with pytest.raises(TypeError, match="registry name"):
        as_datasets([3])
    with pytest.raises(ValueError, match="at least one"):
        as_datasets([])
    other = make_split("test", per_class=2, n_classes=2)
    with pytest.raises(ValueError, match="share one label space"):
        SweepData.from_splits(train, other)


def test_as_models_names_modules():
    enc = TinyEncoder()
    (name, load), = as_models(enc)
    assert name == enc.spec.name and load() is enc
    assert [n for n, _ in as_models({"a": enc, "b": enc})] == ["a", "b"]
    with pytest.raises(TypeError, match="nn.Module"):
        as_models([3])


def test_sweep_runs_on_the_canonical_form(splits, tmp_path, monkeypatch):
    patch_features(monkeypatch, "prepare_dataset", simple_prepare)
    patch_features(monkeypatch, "preparation_notes", lambda dataset, spec: [])
    monkeypatch.setenv("SLIMLIB_CACHE", str(tmp_path / "cache"))
    train, test = splits
    args = dict(widths=(0.5, 1.0), seeds=(0,), out=tmp_path / "s.csv", progress=False,
                metrics=False)
    canonical = sweeping.sweep({"tiny": TinyEncoder()}, [SweepData.from_splits(train, test)],
                               **args)
    again = sweeping.sweep({"tiny": TinyEncoder()}, [(train, test)], **args)
    assert len(canonical) == 2
    assert canonical["value"].tolist() == again["value"].tolist()
