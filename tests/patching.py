"""Patch a name of :mod:`slimlib.features` where every caller looks it up.

The package re-exports the names of its private module ``_extract``: callers inside the
package read ``_extract``'s globals, callers outside (``slimlib.sweeping``) read the package's
attribute. A test that replaces one (e.g. ``prepare_dataset`` by a cheap stand-in) sets both.
"""

from __future__ import annotations

from typing import Any


def patch_features(monkeypatch: Any, name: str, value: Any) -> None:
    import slimlib.features
    from slimlib.features import _extract

    monkeypatch.setattr(_extract, name, value)
    if hasattr(slimlib.features, name):
        monkeypatch.setattr(slimlib.features, name, value)
