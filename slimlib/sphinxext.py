"""Sphinx extension for the companion book (``sphinx.extra_extensions`` in ``_config.yml``).

It runs in the ``jupyter-book build`` process before any chapter executes and makes the
slimlib path settings absolute (:func:`slimlib.config.absolutize_env`), because each
chapter's kernel starts in ``book/notebooks/`` and would otherwise resolve a relative
``SLIMLIB_DATA=../data`` against that folder.
"""

from __future__ import annotations

from typing import Any

from slimlib.config import absolutize_env

__all__ = ["setup"]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point."""
    absolutize_env()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
