"""Sphinx extension for the companion book (``sphinx.extra_extensions`` in ``_config.yml``).

It runs in the ``jupyter-book build`` process before any chapter executes. It is an entry
point: it resolves the settings once (:meth:`slimlib.settings.Settings.from_env`, relative
paths against the folder the build was started from) and writes them, absolute, into the
build's environment, which MyST-NB hands to each chapter's kernel; the kernels start in
``book/notebooks/`` and would otherwise resolve a relative ``SLIMLIB_DATA=../data`` (and the
default results folder) against that folder.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["setup"]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point."""
    from slimlib.settings import Settings

    os.environ.update(Settings.from_env().as_env())  # the kernels inherit these
    return {"parallel_read_safe": True, "parallel_write_safe": True}
