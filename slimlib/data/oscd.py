"""Reader for OSCD (Onera Satellite Change Detection, Daudt et al. 2018) in its official layout.

The three official archives unpack to::

    <root>/Onera Satellite Change Detection dataset - Images/
        train.txt, test.txt                      # comma-separated city names (optional here)
        <city>/dates.txt                         # "date_1: YYYYMMDD" / "date_2: YYYYMMDD"
        <city>/imgs_1_rect/B01.tif … B12.tif, B8A.tif   # 13 single-band S2 L1C tiles, date 1
        <city>/imgs_2_rect/…                     # the same for date 2
    <root>/Onera Satellite Change Detection dataset - Train Labels/<city>/cm/cm.png
    <root>/Onera Satellite Change Detection dataset - Test Labels/<city>/cm/cm.png

(the layout torchgeo's ``OSCD`` reads; 14 train and 10 test cities). ``cm.png`` is 0 = no
change, 255 = change (``<city>-cm.tif`` with 1/2 is used when the PNG is absent). Bands are
read by file name into the ESA order B01…B08, B8A, B09…B12; a band on a coarser grid (20/60 m
kept at native resolution) is resampled bilinearly to the grid of the change map. Values are
L1C DN and become reflectance (/ 10 000).

Cities (about 600 x 600 px) are cut into ``tile`` x ``tile`` items; the last row/column of
tiles is padded (reflect) and the padded pixels get mask :data:`IGNORE`, so every labelled
pixel is scored exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._common import check_memory, require_online
from ._dense import IGNORE, DenseDataset
from .bands import S2_BANDS

IMAGES = "Onera Satellite Change Detection dataset - Images"
LABELS = {"train": "Onera Satellite Change Detection dataset - Train Labels",
          "test": "Onera Satellite Change Detection dataset - Test Labels"}
SPLITS = ("train", "test")
CLASSES = ("no change", "change")
HOMEPAGE = "https://rcdaudt.github.io/oscd/"
CITATION = ("R. Caye Daudt, B. Le Saux, A. Boulch, Y. Gousseau. Urban Change Detection for "
            "Multispectral Earth Observation Using Convolutional Neural Networks. IGARSS 2018.")
LICENCE = "CC-BY-NC-SA 4.0 (OSCD terms on its homepage; unverified here)"


def how_to_get() -> str:
    return (f"Get the three OSCD archives (images, train labels, test labels; {HOMEPAGE}, the "
            f"URLs torchgeo.datasets.OSCD.urls lists) with slimlib.data.load('oscd', "
            f"download=True) on a machine with internet, or by hand, unzip them into one folder "
            f"so that it holds '{IMAGES}/<city>/imgs_1_rect/B01.tif' and "
            f"'{LABELS['train']}/<city>/cm/cm.png', and pass root=<that folder>.")


def _cities(root: Path, split: str) -> list[str]:
    labels = root / LABELS[split]
    return sorted(p.name for p in labels.iterdir() if p.is_dir()) if labels.is_dir() else []


def problem(root: str | os.PathLike | None, split: str = "train") -> str | None:
    """Why OSCD ``split`` cannot be read from ``root`` (``None`` when the layout is there)."""
    if root is None:
        return "no OSCD root given (pass root=<folder holding the unzipped OSCD archives>)"
    base = Path(root).expanduser()
    if not base.is_dir():
        return f"OSCD root {str(base)!r} is not a folder"
    if not (base / IMAGES).is_dir():
        return f"{str(base)!r} has no '{IMAGES}/' folder"
    if not (base / LABELS[split]).is_dir():
        return f"{str(base)!r} has no '{LABELS[split]}/' folder"
    cities = _cities(base, split)
    if not cities:
        return f"'{base / LABELS[split]}' holds no city folders"
    for city in cities:
        for d in ("imgs_1_rect", "imgs_2_rect"):
            folder = base / IMAGES / city / d
            missing = [b for b in S2_BANDS if not (folder / f"{b}.tif").is_file()]
            if missing:
                return f"'{folder}' lacks band files {[f'{b}.tif' for b in missing]}"
        cm = base / LABELS[split] / city / "cm"
        if not ((cm / "cm.png").is_file() or (cm / f"{city}-cm.tif").is_file()):
            return f"'{cm}' has neither cm.png nor {city}-cm.tif"
    return None


def download_oscd(root: str | os.PathLike) -> Path:
    """Fetch and unpack OSCD into ``root`` with torchgeo (fails within seconds when offline)."""
    root = Path(root).expanduser()
    from torchgeo.datasets import OSCD

    host = OSCD.urls[next(iter(OSCD.urls))].split("/")[2]
    require_online(host, "OSCD", how_to_get())
    root.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        OSCD(root=str(root), split=split, download=True, checksum=True)
    return root


def _read_tif(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img, dtype=np.float32)
    except Exception:  # noqa: BLE001 - a TIFF variant PIL cannot decode: try rasterio
        import rasterio

        with rasterio.open(path) as src:
            return src.read(1).astype(np.float32)


def read_mask(root: Path, split: str, city: str) -> np.ndarray:
    """The change map of ``city`` as int64 (H, W): 0 no change, 1 change."""
    cm = root / LABELS[split] / city / "cm"
    if (cm / "cm.png").is_file():
        from PIL import Image

        with Image.open(cm / "cm.png") as img:
            values = np.asarray(img.convert("L"))
        return (values > 0).astype(np.int64)
    values = _read_tif(cm / f"{city}-cm.tif")
    if not set(np.unique(values).tolist()) <= {1.0, 2.0}:
        raise ValueError(f"{cm / f'{city}-cm.tif'}: expected values 1 (no change) / 2 (change)")
    return (values - 1).astype(np.int64)


def read_city(root: str | os.PathLike, split: str, city: str
              ) -> tuple[np.ndarray, np.ndarray, tuple[str, str], bool]:
    """``(images (2, 13, H, W) float32 DN, mask (H, W), dates, resampled)`` of one city."""
    root = Path(root)
    mask = read_mask(root, split, city)
    dates: tuple[str, str] = ("", "")
    dates_file = root / IMAGES / city / "dates.txt"
    if dates_file.is_file():
        lines = dates_file.read_text().strip().splitlines()
        dates = tuple(line.split()[-1] for line in lines[:2])  # type: ignore[assignment]
    out = np.empty((2, len(S2_BANDS), *mask.shape), np.float32)
    resampled = False
    for t, folder in enumerate(("imgs_1_rect", "imgs_2_rect")):
        for c, band in enumerate(S2_BANDS):
            data = _read_tif(root / IMAGES / city / folder / f"{band}.tif")
            if data.ndim != 2:
                raise ValueError(f"{city}/{folder}/{band}.tif has shape {data.shape}; expected "
                                 "one band (H, W)")
            if data.shape != mask.shape:
                x = torch.from_numpy(data)[None, None]
                data = torch.nn.functional.interpolate(x, size=mask.shape, mode="bilinear",
                                                       align_corners=False)[0, 0].numpy()
                resampled = True
            out[t, c] = data
    return out, mask, dates, resampled


def tile_scene(images: np.ndarray, mask: np.ndarray, tile: int
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Cut ``(..., H, W)`` images and their ``(H, W)`` mask into non-overlapping tiles.

    The scene is padded (reflect for images, :data:`IGNORE` for the mask) to a multiple of
    ``tile``; returns ``(tiles (n, ..., tile, tile), masks (n, tile, tile), [(y, x), …])``.
    """
    h, w = mask.shape
    ph, pw = -h % tile, -w % tile
    if ph or pw:
        pad = [(0, 0)] * (images.ndim - 2) + [(0, ph), (0, pw)]
        images = np.pad(images, pad, mode="reflect" if min(h, w) > max(ph, pw) else "edge")
        mask = np.pad(mask, [(0, ph), (0, pw)], constant_values=IGNORE)
    tiles, masks, where = [], [], []
    for y in range(0, h + ph, tile):
        for x in range(0, w + pw, tile):
            tiles.append(images[..., y:y + tile, x:x + tile])
            masks.append(mask[y:y + tile, x:x + tile])
            where.append((y, x))
    return np.stack(tiles), np.stack(masks), where


def load_oscd(split: str, root: str | os.PathLike | None = None, *, tile: int = 128,
              cities: tuple[str, ...] | None = None, download: bool = False,
              max_gib: float | None = 16.0, settings: Any = None) -> DenseDataset:
    """Load OSCD ``split`` (``"train"``: 14 cities, ``"test"``: 10) as two-date tiles.

    Args:
        split: ``"train"`` or ``"test"`` (the official city split).
        root: folder holding the unzipped OSCD archives (see the module docstring); default
            ``$SLIMLIB_DATA/oscd``.
        tile: tile side in pixels (the paper's patching is not published; 128 here).
        cities: read only these cities of the split.
        download: fetch the archives with torchgeo when the layout is missing.
        max_gib: refuse to allocate more float32 image memory than this.

    Returns:
        a :class:`~slimlib.data._dense.DenseDataset` with images ``(N, 2, 13, tile, tile)``
        in reflectance and masks ``(N, tile, tile)`` (0/1, -1 = padding).
    """
    if split not in SPLITS:
        raise ValueError(f"'oscd' has splits {SPLITS}; got split={split!r}")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 8:
        raise ValueError(f"tile must be an int >= 8; got {tile!r}")
    if root is None:                       # the data-root convention of dense.availability
        from ..settings import or_current

        base = or_current(settings).data
        root = base / "oscd" if base is not None else None
    why = problem(root, split)
    if why is not None:
        if not download or root is None:
            raise FileNotFoundError(f"OSCD {split}: {why}. {how_to_get()}")
        download_oscd(root)
        why = problem(root, split)
        if why is not None:
            raise FileNotFoundError(f"OSCD {split} after download: {why}")
    base = Path(root).expanduser()  # type: ignore[arg-type]
    names = _cities(base, split)
    if cities is not None:
        unknown = sorted(set(cities) - set(names))
        if unknown:
            raise ValueError(f"OSCD {split} has no cities {unknown}; it has {names}")
        names = [c for c in names if c in cities]
    images, masks, paths, notes = [], [], [], []
    resampled = False
    from tqdm.auto import tqdm

    for city in tqdm(names, desc=f"read oscd/{split}", leave=False, disable=len(names) < 5):
        scene, mask, _dates, res = read_city(base, split, city)
        resampled |= res
        tiles, tmasks, where = tile_scene(scene, mask, tile)
        check_memory(sum(len(t) for t in images) + len(tiles), tiles.shape[1:], max_gib,
                     f"oscd/{split}", "pass a smaller cities= or a larger max_gib=")
        images.append(tiles)
        masks.append(tmasks)
        paths += [f"{city}[{y}:{y + tile}, {x}:{x + tile}]" for y, x in where]
    if resampled:
        notes.append("bands on a coarser grid were resampled bilinearly to the change-map grid")
    notes.append(f"{len(names)} cities cut into {tile}x{tile} tiles; edge tiles padded, padded "
                 f"pixels masked (-1) and never scored")
    x = torch.from_numpy(np.concatenate(images)) / 1e4
    notes.append("Sentinel-2 L1C DN divided by 10000 (units reflectance).")
    return DenseDataset(name="oscd", split=split, images=x,
                        masks=torch.from_numpy(np.concatenate(masks)), classes=CLASSES,
                        bands=S2_BANDS, units="reflectance", task="change_detection",
                        paths=tuple(paths), notes=notes)


def registry_entry(entry_type: type) -> Any:
    """The registry entry (``slimlib.data.registry.DatasetInfo``) of OSCD."""
    return entry_type(
        name="oscd", kind="local", classes=CLASSES, bands=S2_BANDS, units="reflectance",
        splits=SPLITS, source=f"OSCD, {HOMEPAGE} (official archives, torchgeo layout)",
        licence=LICENCE, citation=CITATION, loader=load_oscd, image_size=None,
        root_setting="root= or $SLIMLIB_DATA/oscd (folder holding the unzipped OSCD archives)",
        description="DENSE (change detection, mIoU over change & no-change; slimlib.dense): "
                    "24 S2 13-band city pairs, 14 train / 10 test, tiled")
