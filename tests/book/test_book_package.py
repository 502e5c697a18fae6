"""The book's code by responsibility, and the library's stages apart from it (issue 24)."""

from __future__ import annotations

import inspect

from slimlib import book


def test_each_book_helper_lives_with_its_responsibility():
    assert book.run_chapter.__module__ == "slimlib.book.runner"
    assert book.setup_page.__module__ == "slimlib.book.pages"
    assert book.sweep_for.__module__ == "slimlib.book.runs"
    assert book.compute_table_cached.__module__ == "slimlib.book.compute_tables"
    assert "atomic_path" in inspect.getsource(book.compute_table_cached)


def test_the_old_names_are_gone():
    import importlib

    import pytest

    for old in ("chapters", "compute", "profiles", "plotting", "claims", "config", "inputs",
                "report", "fast", "exporting", "shards", "cluster", "robustness"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"slimlib.{old}")


def test_run_names_and_cache_keys_share_one_hash():
    from slimlib import _io
    from slimlib.book import runner

    params = {"b": 1, "a": [1, 2]}
    assert runner._hash(params) == _io.parameter_hash(params) == \
        _io.parameter_hash({"a": [1, 2], "b": 1})
    assert len(_io.parameter_hash(params)) == 8


def test_the_two_encoders_have_distinct_names():
    from slimlib import models, train
    from slimlib.train.encoder import TinyViTEncoder

    assert TinyViTEncoder is train.TinyViTEncoder
    assert not hasattr(train, "Encoder")  # the old alias is gone (issue 24)
    assert TinyViTEncoder.__name__ != models.Encoder.__name__
    assert "Encoder" in models.__all__ and "Encoder" not in train.__all__
