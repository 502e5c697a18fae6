"""The data root travels as an argument from a profile to the embedded models' pretraining
(#11 item 1, first step): no helper patches ``$SLIMLIB_DATA`` around a call any more."""

from __future__ import annotations

import os
import types

import pytest

from slimlib._paths import DATA_ENV
from slimlib.train import embedded

DATA = os.environ.get(DATA_ENV)


@pytest.mark.skipif(not DATA, reason=f"needs {DATA_ENV} (the embedded data root)")
def test_checkpoint_path_with_root_argument_equals_the_env_route(monkeypatch):
    via_env = embedded.checkpoint_path("rs-moco-tiny")
    monkeypatch.delenv(DATA_ENV)
    assert embedded.checkpoint_path("rs-moco-tiny", root=DATA) == via_env
    synthetic = embedded.checkpoint_path("rs-moco-tiny")  # no root anywhere: synthetic data
    assert synthetic != via_env


def test_a_root_without_the_data_raises_through_the_argument(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="eurosat_rgb"):
        embedded.checkpoint_path("rs-moco-tiny", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="eurosat_rgb"):
        embedded.pretrain_missing(["rs-moco-tiny"], root=tmp_path)


def test_pretrain_models_passes_the_profile_root_and_leaves_the_env_alone(tmp_path,
                                                                           monkeypatch):
    from slimlib.book import runs

    monkeypatch.delenv(DATA_ENV, raising=False)
    seen = {}

    def fake_missing(names, *, processes, settings):
        seen.update(names=list(names), root=str(settings.data), env=os.environ.get(DATA_ENV))
        return {}

    monkeypatch.setattr(embedded, "pretrain_missing", fake_missing)
    monkeypatch.setattr(embedded, "checkpoint_path",
                        lambda name, *, root=None, settings=None: tmp_path / "x")
    profile = types.SimpleNamespace(pretrained=True, models=("rs-moco-tiny",), cv_models=(),
                                    slimmable_pairs=(), data_root=str(tmp_path))
    with pytest.raises(KeyError):  # fake_missing returns no checkpoint: the table fails
        runs.pretrain_models(profile)
    assert seen == {"names": ["rs-moco-tiny"], "root": str(tmp_path), "env": None}


def test_sweep_inputs_hand_the_root_to_embedded_models_only(monkeypatch):
    from slimlib import models
    from slimlib.sweeping import as_models

    calls = []
    monkeypatch.setattr(models, "load", lambda name, **kw: calls.append((name, kw)))
    for _, load in as_models(["rs-moco-tiny", "galileo-nano"], pretrained=True,
                             data_root="/data"):
        load()
    assert calls == [("rs-moco-tiny", {"pretrained": True, "settings": None,
                                       "data_root": "/data"}),
                     ("galileo-nano", {"pretrained": True, "settings": None})]


def test_book_helpers_no_longer_patch_the_environment():
    import inspect

    from slimlib.book import runs

    source = inspect.getsource(runs)
    body = source.split("def load_options", 1)[1]
    assert "_profile_data_root(" not in body and "os.environ" not in body
