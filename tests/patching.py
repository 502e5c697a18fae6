"""Patch a name of :mod:`slimlib.features` where every caller looks it up.

The package re-exports the names of its private module ``_extract``: callers inside the
package read ``_extract``'s globals, callers outside (``slimlib.sweeping``) read the package's
attribute. A test that replaces one (e.g. ``prepare_dataset`` by a cheap stand-in) sets both.

Also :func:`default_sigint`, for child processes a test interrupts with SIGINT.
"""

from __future__ import annotations

from typing import Any


def patch_features(monkeypatch: Any, name: str, value: Any) -> None:
    import slimlib.features
    from slimlib.features import _extract

    monkeypatch.setattr(_extract, name, value)
    if hasattr(slimlib.features, name):
        monkeypatch.setattr(slimlib.features, name, value)


def default_sigint() -> None:
    """``preexec_fn`` of a child a test interrupts: SIGINT back to its default, as in a
    terminal. A test runner started in the background (``nohup … &``) has SIGINT ignored, and
    children inherit that, so a Ctrl-C test would otherwise wait forever."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
