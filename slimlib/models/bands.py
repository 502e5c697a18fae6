"""Band names, wavelengths and normalisation statistics shared by the registry.

Units follow :data:`slimlib.specs.UNITS`: ``"reflectance"`` is Sentinel-2 L1C digital
numbers divided by 10 000, ``"rgb01"`` is 8-bit imagery divided by 255. Statistics that the
sources publish in digital numbers are converted here once (divided by 10 000), so every
``ModelSpec.mean``/``std`` can be applied directly to data in the spec's ``units``.
"""

from __future__ import annotations

#: The Sentinel-2 band names, ESA centre wavelengths and bandwidths (nm) come from the one
#: table in :mod:`slimlib.bands`; it feeds DOFA (as µm), Copernicus-FM (nm) and Panopticon
#: (channel ids in nm).
from slimlib.bands import RGB_BANDS as RGB_BANDS
from slimlib.bands import S2_BANDS as S2_BANDS
from slimlib.bands import S2_BANDWIDTHS_NM as S2_BANDWIDTHS_NM
from slimlib.bands import S2_WAVELENGTHS_NM as S2_WAVELENGTHS_NM

#: SSL4EO-S12 per-band L1C statistics in DN (torchgeo ``models/resnet.py`` ``_mean_s2`` /
#: ``_std_s2``, used by ``_ssl4eo_s12_transforms_s2_stats`` for the SoftCon weights).
_SSL4EO_S2_MEAN_DN = (1612.9, 1397.6, 1322.3, 1373.1, 1561.0, 2108.4, 2390.7, 2318.7, 2581.0,
                      837.7, 22.0, 2195.2, 1537.4)
_SSL4EO_S2_STD_DN = (791.0, 854.3, 878.7, 1144.9, 1127.5, 1164.2, 1276.0, 1249.5, 1345.9,
                     577.5, 47.5, 1340.0, 1142.9)

#: EuroSAT-S2 statistics Copernicus-Bench standardises Copernicus-FM inputs with (DN, from
#: ``zhu-xlab/Copernicus-FM: Copernicus-Bench/src/configs/dataset/cobench_eurosat_s2.yaml``).
_COBENCH_EUROSAT_S2_MEAN_DN = (1353.7, 1117.2, 1041.8, 946.5, 1199.1, 2003.0, 2374.0, 2301.2,
                               2599.7, 732.1, 12.1, 1820.6, 1118.2)
_COBENCH_EUROSAT_S2_STD_DN = (897.3, 736.0, 684.8, 620.0, 791.9, 1341.3, 1595.4, 1545.5, 1750.1,
                              475.1, 98.3, 1216.5, 736.7)

#: TerraMind v1 pretraining statistics of the ``untok_sen2l1c@224`` modality (DN), from TerraTorch
#: ``terratorch/models/backbones/terramind/model/terramind_register.py`` (``v1_pretraining_*``).
_TERRAMIND_S2L1C_MEAN_DN = (2357.089, 2137.385, 2018.788, 2082.986, 2295.651, 2854.537,
                            3122.849, 3040.56, 3306.481, 1473.847, 506.07, 2472.825, 1838.929)
_TERRAMIND_S2L1C_STD_DN = (1624.683, 1675.806, 1557.708, 1833.702, 1823.738, 1733.977,
                           1732.131, 1679.732, 1727.26, 1024.687, 442.165, 1331.411, 1160.419)

#: Prithvi-EO-2.0 pretraining statistics (HLS surface reflectance x 10 000) from TerraTorch
#: ``terratorch/models/backbones/prithvi_vit.py`` (``PRITHVI_V2_MEAN``/``_STD``). Order: HLS
#: Blue, Green, Red, NIR-narrow, SWIR1, SWIR2, i.e. Sentinel-2 B02, B03, B04, B8A, B11, B12.
PRITHVI_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B8A", "B11", "B12")
_PRITHVI_V2_MEAN_DN = (1087.0, 1342.0, 1433.0, 2734.0, 1958.0, 1363.0)
_PRITHVI_V2_STD_DN = (2248.0, 2179.0, 2178.0, 1850.0, 1242.0, 1049.0)

IMAGENET_MEAN: tuple[float, ...] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, ...] = (0.229, 0.224, 0.225)


def _dn_to_reflectance(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v / 10_000.0, 8) for v in values)


SSL4EO_S2_MEAN = _dn_to_reflectance(_SSL4EO_S2_MEAN_DN)
SSL4EO_S2_STD = _dn_to_reflectance(_SSL4EO_S2_STD_DN)
COBENCH_EUROSAT_S2_MEAN = _dn_to_reflectance(_COBENCH_EUROSAT_S2_MEAN_DN)
COBENCH_EUROSAT_S2_STD = _dn_to_reflectance(_COBENCH_EUROSAT_S2_STD_DN)
TERRAMIND_S2L1C_MEAN = _dn_to_reflectance(_TERRAMIND_S2L1C_MEAN_DN)
TERRAMIND_S2L1C_STD = _dn_to_reflectance(_TERRAMIND_S2L1C_STD_DN)
PRITHVI_V2_MEAN = _dn_to_reflectance(_PRITHVI_V2_MEAN_DN)
PRITHVI_V2_STD = _dn_to_reflectance(_PRITHVI_V2_STD_DN)


def s2_wavelengths_um(bands: tuple[str, ...]) -> tuple[float, ...]:
    """Centre wavelengths in micrometres for Sentinel-2 ``bands``."""
    return tuple(S2_WAVELENGTHS_NM[b] / 1000.0 for b in bands)
