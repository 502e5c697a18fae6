"""Input validation shared by the public API (scikit-learn style: say what is allowed)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real
from typing import Any


def check_parts(parts: Iterable[str] | str) -> tuple[str, ...]:
    """``parts`` (one name or several) as a tuple, in the given order, or ``ValueError``:
    a non-empty subset of :data:`slimlib.constants.PARTS` (``"attn"``, ``"ffn"``)."""
    from slimlib.constants import PARTS

    values = (parts,) if isinstance(parts, str) else tuple(parts)
    if not values or any(p not in PARTS for p in values):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {parts!r}")
    return values


def check_width(width: object, name: str = "width") -> float:
    """Return ``width`` as a float in (0, 1] or raise ``ValueError`` saying so."""
    if isinstance(width, bool) or not isinstance(width, Real):
        raise ValueError(f"{name} must be a real number in (0, 1]; got {width!r}")
    value = float(width)
    if math.isnan(value) or not (0.0 < value <= 1.0):
        raise ValueError(f"{name} must be in the range (0, 1]; got {width!r}")
    return value


def check_widths(widths: Iterable[object], name: str = "widths") -> list[float]:
    """Validate a non-empty sequence of widths."""
    values = [check_width(w, name) for w in widths]
    if not values:
        raise ValueError(f"{name} must hold at least one width in (0, 1]")
    return values


def check_choice(value: object, allowed: Iterable[str], name: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return str(value)


def slimmed_dim(width: float, full: int) -> int:
    """The paper's kept size: ``max(1, floor(s * full))``, computed on ``float(width)``.

    The product is floored with a relative tolerance of 1e-6, so rounding in the width's
    representation does not cost a dimension: ``0.3 * 10 = 2.9999999999999996`` keeps 3 and
    ``np.float32(0.7)`` (0.699999988...) of 10 keeps 7, as the decimal width says.
    """
    product = float(width) * int(full)
    return max(1, min(int(full), math.floor(product + 1e-6 * max(1.0, abs(product)))))


def check_int(value: object, name: str, *, low: int = 1) -> int:
    """``value`` as an ``int >= low`` (Python or NumPy integer; bools refused), else
    ``ValueError`` naming ``name``: "a positive integer" (``low=1``), "a non-negative integer"
    (``low=0``) or "an int >= low"."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        wanted = {1: "a positive integer (an int >= 1)",
                  0: "a non-negative integer (an int >= 0)"}.get(low, f"an int >= {low}")
        raise ValueError(f"{name} must be {wanted}; got {value!r}")
    return int(value)


def check_same_length(n_a: int, n_b: int, what_a: str, what_b: str) -> None:
    """``ValueError`` unless two paired inputs hold as many samples each (the shared core of
    every "(train, test)" / "(x, y)" pair check)."""
    if int(n_a) != int(n_b):
        raise ValueError(f"length mismatch: {what_a} holds {n_a} samples but {what_b} holds "
                         f"{n_b}")


def check_paired_samples(x: Any, y: Any, split: str) -> None:
    """``ValueError`` unless features ``x`` ``(N, D)`` and labels ``y`` ``(N,)``/``(N, K)`` of
    one split pair one to one (probe inputs)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{split}_x has {x.shape[0]} samples but {split}_y has {y.shape[0]} "
                         "labels; they must match one to one")


def check_splits_of_one_task(train: Any, test: Any, kind: type) -> None:
    """``train`` and ``test`` are both ``kind`` (e.g. ``DenseDataset``) and splits of one task:
    same ``task`` and ``classes`` (``TypeError`` / ``ValueError`` otherwise)."""
    for d in (train, test):
        if not isinstance(d, kind):
            raise TypeError(f"train and test must be {kind.__name__}; got {type(d).__name__}")
    if train.task != test.task or train.classes != test.classes:
        raise ValueError(f"train ({train.name}/{train.split}) and test ({test.name}/{test.split}) "
                         "are not splits of one task (task or classes differ)")


def check_interval(name: str, value: object, lo: float, hi: float) -> None:
    """``value`` is a pair ``[low, high]`` of numbers within ``[lo, hi]`` with ``low <= high``
    (configuration ranges such as a crop scale), else ``ValueError`` naming ``name``."""
    def fail(allowed: str) -> None:
        raise ValueError(f"{name} must be {allowed}; got {value!r}")

    if not (isinstance(value, tuple | list) and len(value) == 2):
        fail(f"a pair [low, high] within [{lo}, {hi}]")
    for v in value:  # type: ignore[union-attr]
        if (isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(float(v))
                or not lo <= float(v) <= hi):
            raise ValueError(f"{name} must be a number in [{lo}, {hi}]; got {v!r}")
    if value[0] > value[1]:  # type: ignore[index]
        fail("a pair [low, high] with low <= high")


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which extra installs it.

    ``require("submitit", "scale")`` returns the module, or raises ``ModuleNotFoundError``
    naming ``pip install 'slimlib[scale]'`` when it is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] and err.name != module:
            raise  # the module is there but one of its own imports failed: show that
        raise ModuleNotFoundError(
            f"{module} is not installed; it comes with slimlib's [{extra}] extra: "
            f"pip install 'slimlib[{extra}]' (or bash scripts/setup.sh for everything)",
            name=module) from err
