"""Band names, band orders and the rules that map one onto another.

Sentinel-2 bands are named ``"B01"`` … ``"B12"`` plus ``"B8A"``; 8-bit RGB imagery uses
``"R"``, ``"G"``, ``"B"``. Two Sentinel-2 orders matter in practice:

* :data:`S2_BANDS` — the ESA order ``B01…B08, B8A, B09…B12`` expected by, e.g., the
  SSL4EO-S12 weights;
* :data:`EUROSAT_MS_BANDS` — the order inside the EuroSAT multispectral GeoTIFFs,
  ``B01…B12, B8A`` (B8A last; phelber/EuroSAT#7, torchgeo PR #2480).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from slimlib.bands import RGB_BANDS, S2_BANDS, S2_WAVELENGTHS_UM, is_s2

__all__ = ["S2_BANDS", "EUROSAT_MS_BANDS", "RGB_BANDS", "RGB_TO_S2", "S2_TO_RGB",
           "S2_WAVELENGTHS_UM", "RGB_GAIN", "is_s2", "is_rgb", "geobench_band_name",
           "check_band_names"]

#: Band order inside the EuroSAT MS GeoTIFF files (B8A last).
EUROSAT_MS_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
#: True-colour aliases: an RGB channel and the Sentinel-2 band it renders.
RGB_TO_S2: dict[str, str] = {"R": "B04", "G": "B03", "B": "B02"}
S2_TO_RGB: dict[str, str] = {v: k for k, v in RGB_TO_S2.items()}

#: Gain that renders Sentinel-2 reflectance (DN / 10 000) as 8-bit-like true colour in [0, 1]:
#: ``rgb01 = clip(reflectance * RGB_GAIN, 0, 1)``, i.e. reflectance 0.275 (DN 2750) maps to 255.
#: A least-squares fit of the 270 EuroSAT RGB JPEGs against their MS B04/B03/B02 gives slopes
#: 3.57 / 3.63 / 3.65 (see docs/data.md), matching 1 / 0.275 = 3.64.
RGB_GAIN: float = 1.0 / 0.275

_GEOBENCH_S2 = re.compile(r"^(\d{2})(A?)\s*-\s*")
_DATE_SUFFIX = re.compile(r"_(\d{4}-\d{2}-\d{2}.*|NoDate)$")


def is_rgb(name: str) -> bool:
    return name in RGB_BANDS


def geobench_band_name(descriptor: str, sensor: str | None = None) -> str:
    """Canonical name of a GEO-Bench band descriptor.

    ``"04 - Red"`` → ``"B04"``, ``"08A - Vegetation Red Edge"`` → ``"B8A"``,
    ``"Red"`` → ``"R"``; Sentinel-1 descriptors such as ``"01 - VH.Real"`` (``sensor="s1"``)
    become ``"S1 VH.Real"``. A date suffix (``"_2019-05-01"``) is dropped. Unknown
    descriptors are returned unchanged.
    """
    name = _DATE_SUFFIX.sub("", descriptor.strip())
    lowered = name.lower()
    if lowered in ("red", "green", "blue"):
        return {"red": "R", "green": "G", "blue": "B"}[lowered]
    match = _GEOBENCH_S2.match(name)
    if match and sensor != "s1":
        number, a = match.groups()
        if a:
            return "B8A" if number == "08" else name
        candidate = f"B{number}"
        return candidate if is_s2(candidate) else name
    if match and sensor == "s1":
        return "S1 " + name[match.end():].strip()
    return name


def check_band_names(bands: Sequence[str], what: str = "bands") -> tuple[str, ...]:
    """Return ``bands`` as a tuple after checking it is a non-empty sequence of unique strings."""
    if isinstance(bands, str) or not isinstance(bands, Sequence) or not bands:
        raise ValueError(f"{what} must be a non-empty sequence of band names; got {bands!r}")
    bands = tuple(bands)
    if not all(isinstance(b, str) for b in bands):
        raise ValueError(f"{what} must hold strings; got {bands!r}")
    dupes = sorted({b for b in bands if bands.count(b) > 1})
    if dupes:
        raise ValueError(f"{what} has duplicate band names {dupes}")
    return bands
