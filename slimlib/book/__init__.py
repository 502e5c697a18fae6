"""The book's machinery, by responsibility.

* :mod:`slimlib.book.runner`: run one chapter (a Jupytext notebook) headless with papermill,
  its parameters and the run files it leaves;
* :mod:`slimlib.book.page`: the page setup every chapter calls first;
* :mod:`slimlib.book.runs`: what a chapter runs for its profile (pretraining the embedded
  models, sweeps, random-init controls, which model fits which dataset).

The cached FLOP tables and latency timing live next to the FLOP counter, in
:mod:`slimlib.compute`. :mod:`slimlib.chapters` re-exports all of these under their old names.
"""

from slimlib.book.page import setup_page
from slimlib.book.runner import KERNEL, chapter_parameters, list_chapters, parse_value, run_chapter
from slimlib.book.runs import (
    controls_for,
    embedded_models_of,
    pretrain_models,
    runs_on,
    runs_on_name,
    shared_controls_for,
    sweep_for,
)

__all__ = ["KERNEL", "run_chapter", "list_chapters", "parse_value", "chapter_parameters",
           "setup_page", "embedded_models_of", "pretrain_models", "runs_on", "runs_on_name",
           "sweep_for", "controls_for", "shared_controls_for"]
