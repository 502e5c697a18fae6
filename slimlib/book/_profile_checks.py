"""Validation of profile settings: one override of a :class:`slimlib.book.profiles.Profile` field
checked against the field's type and range (:func:`_check_setting`), with the helpers it uses.

:func:`slimlib.book.profiles.resolve` (and so :func:`slimlib.book.profiles.check_parameters`) calls it
for every override, so a bad value (a seed ``1.7``, ``True`` where a list is expected) fails
with an error naming the setting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from slimlib._validation import check_widths
from slimlib.settings import Settings


def _tuple(value: Any, name: str) -> tuple:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list (or a single name), got {type(value).__name__}")
    return tuple(value)


def _options(value: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    items = value.items() if isinstance(value, dict) else value
    out = []
    for name, opts in items:
        opts = opts.items() if isinstance(opts, dict) else opts
        out.append((str(name), tuple((str(k), v) for k, v in opts)))
    return tuple(out)


def _bad(key: str, wanted: str, value: Any) -> ValueError:
    return ValueError(f"profile setting {key} must be {wanted}; got {value!r} "
                      f"({type(value).__name__})")


def _names(key: str, value: Any) -> tuple[str, ...]:
    names = _tuple(value, key)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise _bad(key, "a name or a non-empty list of names (strings)", value)
    return names


def _integer(key: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``; bools and non-integral numbers (1.7) are refused
    (integer text such as ``"8"`` is accepted)."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or int(value) < low:
        raise _bad(key, f"an integer >= {low}", value)
    return int(value)


def _check_setting(key: str, value: Any) -> Any:
    """One override validated against the :class:`Profile` field's type and range."""
    if key in ("models", "cv_models", "datasets", "cv_datasets"):
        return _names(key, value)
    if key == "protocols":
        names = _names(key, value)
        bad = [n for n in names if n not in ("knn", "linear")]
        if bad:
            raise _bad(key, "'knn' and/or 'linear'", value)
        return names
    if key in ("widths", "ablation_widths", "compute_widths", "control_widths"):
        return tuple(check_widths(_tuple(value, key), key))
    if key == "model_options":
        if not isinstance(value, dict | tuple | list):
            raise _bad(key, "a mapping {model: {option: value}}", value)
        return _options(value)
    if key == "train_fraction":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0.0 < float(value) <= 1.0:
            raise _bad(key, "a number in (0, 1]", value)
        return float(value)
    if key in ("seeds", "init_seeds"):
        seeds = tuple(_integer(key, s, 0) for s in _tuple(value, key))
        if not seeds or len(set(seeds)) != len(seeds):
            raise _bad(key, "a non-empty list of distinct integers >= 0", value)
        return seeds
    if key == "slimmable_pairs":
        pairs = tuple(tuple(p) for p in _tuple(value, key))
        if not all(len(p) == 2 and all(isinstance(n, str) for n in p) for p in pairs):
            raise _bad(key, "a list of [regular, slimmable] name pairs", value)
        return pairs
    if key == "crossfit":
        names = _tuple(value, key)
        if not all(isinstance(n, str) and n for n in names):
            raise _bad(key, "a list of dataset names (possibly empty)", value)
        return names
    if key == "folds":
        return _integer(key, value, 2)
    if key in ("batch_size", "latency_repeats") or key.endswith("limit_per_class"):
        return _integer(key, value, 1)
    if key in ("name", "device", "data_root"):
        if not isinstance(value, str | os.PathLike) or isinstance(value, bool) or not str(value):
            raise _bad(key, "a string" + (" (a folder path)" if key == "data_root" else ""),
                       value)
        if key == "device":
            import torch

            try:
                torch.device(str(value))
            except (RuntimeError, ValueError):
                raise _bad(key, "a torch device such as 'cpu' or 'cuda'", value) from None
        return str(value)
    if key == "pretrained":
        if not isinstance(value, bool):
            raise _bad(key, "true or false", value)
        return value
    if key == "settings":
        if not isinstance(value, Settings):
            raise _bad(key, "a slimlib.settings.Settings", value)
        return value
    return value
