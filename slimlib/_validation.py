"""Input validation shared by the public API (scikit-learn style: say what is allowed)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real


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
