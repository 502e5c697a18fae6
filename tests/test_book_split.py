"""slimlib.chapters split by responsibility: the old names still resolve, to the new homes."""

from __future__ import annotations

import inspect

from slimlib import book, chapters, compute


def test_chapters_reexports_every_old_name():
    for name in chapters.__all__:
        assert getattr(chapters, name) is getattr(book, name, None) or \
            getattr(chapters, name) is getattr(compute, name, None), name
    # private helpers other modules import from slimlib.chapters
    # (_profile_data_root and _patched_env, which set $SLIMLIB_DATA, are gone: settings
    # travel as arguments, see tests/test_settings_env.py)
    for name in ("_reserve", "_finish", "_hash",
                 "embedded_models_of", "runs_on_name", "KERNEL", "_random_init"):
        assert hasattr(chapters, name), name


def test_each_helper_lives_with_its_responsibility():
    assert chapters.run_chapter.__module__ == "slimlib.book.runner"
    assert chapters.setup_page.__module__ == "slimlib.book.page"
    assert chapters.sweep_for.__module__ == "slimlib.book.runs"
    assert chapters.compute_table_cached.__module__ == "slimlib.compute"
    assert chapters.time_forward.__module__ == "slimlib.compute"
    assert "atomic_path" in inspect.getsource(compute.compute_table_cached)


def test_run_names_and_cache_keys_share_one_hash():
    from slimlib import _io

    params = {"b": 1, "a": [1, 2]}
    assert chapters._hash(params) == _io.parameter_hash(params) == \
        _io.parameter_hash({"a": [1, 2], "b": 1})
    assert len(_io.parameter_hash(params)) == 8


def test_the_two_encoders_have_distinct_names():
    from slimlib import models, train
    from slimlib.train.encoder import Encoder as OldName
    from slimlib.train.encoder import TinyViTEncoder

    assert OldName is TinyViTEncoder is train.TinyViTEncoder
    assert TinyViTEncoder.__name__ != models.Encoder.__name__
    assert "Encoder" in models.__all__ and "Encoder" not in train.__all__
