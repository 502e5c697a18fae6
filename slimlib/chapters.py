"""The book helpers under their historical module name.

The code now lives by responsibility: :mod:`slimlib.book.runner` (run a chapter headless),
:mod:`slimlib.book.page` (page setup), :mod:`slimlib.book.runs` (pretraining, sweeps and
controls for a profile) and :mod:`slimlib.compute` (cached FLOP tables, latency timing).
Every name this module exported, and the private helpers other modules import from it, are
re-exported here, so ``slimlib.chapters.sweep_for`` and friends keep working.
"""

from slimlib.book.page import setup_page
from slimlib.book.runner import (
    KERNEL,
    _finish,
    _hash,
    _read,
    _reserve,
    chapter_parameters,
    list_chapters,
    parse_value,
    run_chapter,
)
from slimlib.book.runs import (
    _spec_of,
    _with_options,
    controls_for,
    embedded_models_of,
    pretrain_models,
    runs_on,
    runs_on_name,
    shared_controls_for,
    sweep_for,
)
from slimlib.compute import _random_init, compute_table_cached, time_forward

__all__ = ["run_chapter", "list_chapters", "parse_value", "chapter_parameters", "setup_page",
           "pretrain_models", "sweep_for", "runs_on", "controls_for", "shared_controls_for",
           "compute_table_cached",
           "time_forward"]

# importable from here for code written against the single module
_REEXPORTED = (KERNEL, _finish, _hash, _read, _reserve,
               _spec_of, _with_options, embedded_models_of, runs_on_name, _random_init)
