"""Online alternative: the full EuroSAT MS through torchgeo (downloaded only when asked)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..settings import Settings, or_current
from ..specs import ImageDataset
from ._common import check_limit, check_memory, parallel_map, require_online, stratified_subset
from .bands import EUROSAT_MS_BANDS

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"valid": "val", "validation": "val"}


def _default_root(settings: Settings) -> Path:
    return Path(settings.cache) / "torchgeo" / "eurosat"


def load_torchgeo_eurosat(split: str, root: str | os.PathLike | None = None, *,
                          download: bool = False, limit_per_class: int | None = None,
                          seed: int = 0, max_gib: float | None = 8.0,
                          settings: Settings | None = None) -> ImageDataset:
    """torchgeo's ``EuroSAT`` (27,000 13-band images; splits 16,200/5,400/5,400).

    ``root`` defaults to ``<settings.cache>/torchgeo/eurosat`` (``$SLIMLIB_CACHE``). Without ``download=True`` a
    missing copy raises ``FileNotFoundError``; with it, an unreachable host raises
    ``ConnectionError`` within seconds. Bands are kept in the files' order (B8A last).
    """
    limit_per_class = check_limit(limit_per_class)
    from torchgeo.datasets import DatasetNotFoundError, EuroSAT

    path = (Path(root).expanduser() if root is not None
            else _default_root(or_current(settings)))
    have = (path / EuroSAT.split_filenames[split]).is_file() and (
        (path / EuroSAT.base_dir).is_dir() or (path / EuroSAT.filename).is_file())
    if not have:
        if not download:
            raise FileNotFoundError(
                f"torchgeo EuroSAT not found in {str(path)!r}. Pass download=True (needs internet, "
                f"~2 GB from hf.co/datasets/torchgeo/eurosat) or root= pointing at an existing "
                f"torchgeo EuroSAT folder. Offline, use the embedded 'eurosat-ms'/'eurosat-rgb'.")
        require_online("hf.co", "torchgeo EuroSAT",
                       "Use the embedded 'eurosat-ms' / 'eurosat-rgb' datasets offline.")
        path.mkdir(parents=True, exist_ok=True)
    try:
        ds = EuroSAT(root=str(path), split=split, bands=EUROSAT_MS_BANDS, download=download)
    except DatasetNotFoundError as err:
        raise FileNotFoundError(str(err)) from None
    labels = np.asarray([target for _, target in ds.samples])
    keep = stratified_subset(labels, limit_per_class, seed)
    check_memory(len(keep), (13, 64, 64), max_gib, f"torchgeo-eurosat/{split}",
                 "pass limit_per_class= or a larger max_gib=")
    first = ds[int(keep[0])]["image"]
    images = torch.empty((len(keep), *first.shape), dtype=torch.float32)   # filled in place

    def fill(j: int) -> None:
        images[j] = ds[int(keep[j])]["image"].float() * 1e-4

    parallel_map(fill, list(range(len(keep))), desc=f"read EuroSAT/{split}")
    notes = ["torchgeo EuroSAT (all 27,000 images, splits of Neumann et al. 2019); bands in "
             "file order B01..B12,B8A; DN/10000."]
    if limit_per_class is not None:
        notes.append(f"subset: at most {limit_per_class} images per class (seed={seed})")
    return ImageDataset(
        name="torchgeo-eurosat", split=split, images=images,
        labels=torch.as_tensor(labels[keep], dtype=torch.int64), classes=tuple(ds.classes),
        bands=EUROSAT_MS_BANDS, units="reflectance", synthetic=False,
        paths=tuple(os.path.relpath(ds.samples[int(i)][0], path) for i in keep), notes=notes,
    )
