"""The companion book: a client of the library, never imported by it.

The chapters (``notebooks/*.py``) call these; the library (every other sub-package of
:mod:`slimlib`) does not know they exist. By responsibility:

* :mod:`~slimlib.book.profiles`: the run profiles (``smoke``, ``default``, ``paper``);
* :mod:`~slimlib.book.runner`: run one chapter headless with papermill; :mod:`~slimlib.book.sphinxext`
  the Jupyter Book extension; :mod:`~slimlib.book.pages`: what every page does first;
* :mod:`~slimlib.book.runs`: pretraining the embedded models, sweeps and random-init controls
  of a profile; :mod:`~slimlib.book.sweep_plan`: every sweep the chapters ask for, as shards
  for :mod:`slimlib.scale`; :mod:`~slimlib.book.compute_tables`: the cached FLOP tables;
* :mod:`~slimlib.book.claims` (the paper's claims, their statistics, evidence and verdicts),
  :mod:`~slimlib.book.reference` and :mod:`~slimlib.book.comparison` (the paper's published
  numbers and our differences from them), :mod:`~slimlib.book.findings`;
* :mod:`~slimlib.book.robustness`: chapter 10;
* figures: :mod:`~slimlib.book.plotting`, :mod:`~slimlib.book.plot_tables`,
  :mod:`~slimlib.book.palette`, :mod:`~slimlib.book.diagrams`.

The names below are what the chapters call most.
"""

from slimlib.book.compute_tables import compute_table_cached
from slimlib.book.pages import setup_page
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
           "sweep_for", "controls_for", "shared_controls_for", "compute_table_cached"]
