"""Per-image outcomes of a probe row: the true and predicted class of every test image.

A sweep row's ``value`` is one number (macro accuracy); intervals that come from the test
images (a bootstrap over images) and differences measured on the *same* images (pretrained vs
its floor, vs random init, regular vs slimmable) need the per-image outcomes behind it. They
travel with the row as one compact text cell, ``outcomes``, written by :func:`encode` and read
by :func:`decode`:

``"<w>:<labels>:<predictions>"`` — ``w`` base-36 digits per image, images in the order of
the dataset's test images (for cross-fitted datasets: every image, each predicted by the fold
that held it out). Two rows with the same ``data_fp`` list the same images in the same order,
so their outcomes can be paired image by image.

Single-label probes only; multi-label (mAP) rows and ``protocol="features"`` rows have an
empty cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Outcomes", "encode", "decode", "decode_all"]

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_VALUE = {c: i for i, c in enumerate(_DIGITS)}


@dataclass(frozen=True)
class Outcomes:
    """True and predicted class codes of each test image, in the dataset's test order."""

    labels: np.ndarray
    preds: np.ndarray

    def __post_init__(self) -> None:
        if self.labels.shape != self.preds.shape or self.labels.ndim != 1:
            raise ValueError(f"labels {self.labels.shape} and preds {self.preds.shape} must be "
                             "1-D arrays of one length")

    @property
    def n(self) -> int:
        return int(self.labels.size)

    @property
    def correct(self) -> np.ndarray:
        return self.labels == self.preds


def _width(largest: int) -> int:
    width = 1
    while 36 ** width <= largest:
        width += 1
    return width


def _to_text(codes: np.ndarray, width: int) -> str:
    out = []
    for code in codes.tolist():
        digits = []
        for _ in range(width):
            code, rest = divmod(code, 36)
            digits.append(_DIGITS[rest])
        out.append("".join(reversed(digits)))
    return "".join(out)


def _from_text(text: str, width: int) -> np.ndarray:
    if len(text) % width:
        raise ValueError(f"outcome text of length {len(text)} is not a multiple of {width}")
    values = [_VALUE[c] for c in text]
    codes = np.zeros(len(text) // width, dtype=np.int64)
    for i in range(width):
        codes = codes * 36 + np.asarray(values[i::width], dtype=np.int64)
    return codes


def encode(labels: Any, preds: Any) -> str:
    """The ``outcomes`` cell of a row: integer class codes ``labels`` and ``preds`` (≥ 0)."""
    labels = np.asarray(labels).astype(np.int64, copy=False).ravel()
    preds = np.asarray(preds).astype(np.int64, copy=False).ravel()
    Outcomes(labels, preds)  # shape check
    if labels.size == 0:
        return ""
    if min(labels.min(), preds.min()) < 0:
        raise ValueError("class codes must be >= 0")
    width = _width(int(max(labels.max(), preds.max())))
    return f"{width}:{_to_text(labels, width)}:{_to_text(preds, width)}"


def decode(cell: Any) -> Outcomes | None:
    """The :class:`Outcomes` of an ``outcomes`` cell; ``None`` for an empty / missing cell."""
    if isinstance(cell, str):
        if cell == "":
            return None
    else:
        import pandas as pd

        if cell is None or pd.isna(cell):   # None, NaN, pd.NA: a row without outcomes
            return None
    try:
        width_text, labels, preds = str(cell).split(":")
        width = int(width_text)
        if width < 1:
            raise ValueError
        return Outcomes(_from_text(labels, width), _from_text(preds, width))
    except (ValueError, KeyError) as err:
        raise ValueError(f"not an outcomes cell: {str(cell)[:40]!r}…") from err


def decode_all(cells: Any) -> list[Outcomes] | None:
    """The :class:`Outcomes` of every cell (e.g. one row per probe seed), or ``None`` when
    there is no cell or any cell is empty (those rows cannot be paired image by image).
    A malformed cell raises ``ValueError`` (:func:`decode`)."""
    out = [decode(cell) for cell in cells]
    return None if not out or any(o is None for o in out) else out
