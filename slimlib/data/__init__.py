"""Datasets for slimming sweeps and the code that feeds them to models.

Public API::

    slimlib.data.list_datasets(kind=None) -> list[str]
    slimlib.data.info(name) -> DatasetInfo   (also readable as info(name)["kind"])
    slimlib.data.load(name, split="train", *, root=None, **kw) -> ImageDataset
    slimlib.data.default_dataset(root=None) -> str
    slimlib.data.datasets_for_root(root, real, synthetic) -> tuple[str, ...]
    slimlib.data.prepare(dataset_or_images, spec, *, bands=None, rgb_policy="refuse") -> Tensor
    slimlib.data.iter_prepared(dataset, spec, batch_size=256) -> Iterator[(x, y)]
    slimlib.data.band_plan(bands, units, spec) -> BandPlan
    slimlib.data.clear_cache()

Datasets come in four kinds: ``embedded`` (real images under ``$SLIMLIB_DATA``),
``local`` (GEO-Bench, ImageNet: the user's own copy), ``online`` (torchgeo EuroSAT,
downloaded only with ``download=True``) and ``synthetic`` (generated, always labelled).
See ``docs/data.md`` for sources, licences, split rules and band rules.
"""

from __future__ import annotations

from ._common import stratified_subset
from ._dense import IGNORE, DenseDataset
from .bands import EUROSAT_MS_BANDS, RGB_BANDS, RGB_GAIN, RGB_TO_S2, S2_BANDS, S2_WAVELENGTHS_UM
from .folders import load_image_folder, read_image_file
from .imagenet import IMAGENET10_WNIDS, IMAGENET100_WNIDS
from .preprocess import RGB_POLICIES, BandPlan, band_plan, iter_prepared, prepare
from .registry import (
    EMBEDDED_FOLDERS,
    DatasetInfo,
    clear_cache,
    datasets_for_root,
    default_dataset,
    info,
    list_datasets,
    load,
)

__all__ = [
    "EUROSAT_MS_BANDS", "IMAGENET100_WNIDS", "IMAGENET10_WNIDS", "RGB_BANDS", "RGB_GAIN",
    "RGB_POLICIES", "RGB_TO_S2", "S2_BANDS", "S2_WAVELENGTHS_UM", "BandPlan", "DatasetInfo",
    "EMBEDDED_FOLDERS", "DenseDataset", "IGNORE", "stratified_subset", "load_image_folder", "read_image_file", "band_plan", "clear_cache", "datasets_for_root", "default_dataset", "info", "iter_prepared", "list_datasets",
    "load", "prepare",
]
