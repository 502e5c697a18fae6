"""The one Sentinel-2 band table: names, ESA order, centre wavelengths and bandwidths.

Values are the ESA Sentinel-2 MSI User Handbook's rounded central wavelengths and bandwidths
(nm; the table of the Sentinel-2 User Guide, "Spatial resolution" / "Radiometric resolution"):
B01 443, B02 490, B03 560, B04 665, B05 705, B06 740, B07 783, B08 842, B8A 865, B09 945,
B10 1375, B11 1610, B12 2190. :mod:`slimlib.data.bands` (µm, for data) and
:mod:`slimlib.models.bands` (nm, for wavelength-conditioned models: DOFA, Copernicus-FM,
Panopticon) both read them from here.

Until this table was unified, the model side used Copernicus-Bench's rounded values
(B01 440, B8A 860, B09 940, B10 1370 nm); see ``docs/architecture.md``.
"""

from __future__ import annotations

__all__ = ["S2_BANDS", "RGB_BANDS", "S2_WAVELENGTHS_NM", "S2_BANDWIDTHS_NM",
           "S2_WAVELENGTHS_UM", "is_s2"]

#: The 13 Sentinel-2 L1C bands in ESA order (B8A after B08), the order SSL4EO-S12 and torchgeo
#: ``_sentinel2_toa_bands`` use.
S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
#: Channel names of 8-bit RGB imagery.
RGB_BANDS: tuple[str, ...] = ("R", "G", "B")

#: ESA central wavelengths (nm) of the Sentinel-2 MSI bands.
S2_WAVELENGTHS_NM: dict[str, float] = dict(zip(
    S2_BANDS, (443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190), strict=True,
))
#: ESA bandwidths (nm) of the Sentinel-2 MSI bands.
S2_BANDWIDTHS_NM: dict[str, float] = dict(zip(
    S2_BANDS, (20, 65, 35, 30, 15, 15, 20, 115, 20, 20, 30, 90, 180), strict=True,
))
#: The same central wavelengths in micrometres.
S2_WAVELENGTHS_UM: dict[str, float] = {b: round(nm / 1000.0, 6)
                                       for b, nm in S2_WAVELENGTHS_NM.items()}


def is_s2(name: str) -> bool:
    """Whether ``name`` is a Sentinel-2 band name (``"B01"`` … ``"B12"``, ``"B8A"``)."""
    return name in S2_WAVELENGTHS_UM
