"""Loaders for the embedded real datasets under the data root (``$SLIMLIB_DATA``).

Each dataset folder holds ``<class>/<file>`` images and a ``manifest.csv`` with
``path,class,label,…,sha256``. Images are checked against the manifest (presence and
sha256), decoded once on a thread pool and returned as float32 ``(N, C, H, W)``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slimlib._paths import DATA_ENV, data_root

from ..constants import EMBEDDED_FOLDERS
from ..specs import ImageDataset
from ._common import SkipLog, check_limit, parallel_map, stratified_subset
from .bands import EUROSAT_MS_BANDS, RGB_BANDS


@dataclass(frozen=True)
class _Manifest:
    rows: list[dict[str, str]]
    classes: tuple[str, ...]


def _dataset_dir(folder: str, root: str | os.PathLike | None, name: str) -> Path:
    try:
        base = data_root(root)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{name!r} is an embedded dataset read from the data root: {err} The expected layout "
            f"is <root>/{folder}/manifest.csv; see docs/data.md ('Embedded datasets') for where "
            f"the files come from. Without data, use slimlib.data.load('synthetic-ms')."
        ) from None
    path = base / folder
    if not (path / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{name!r}: {str(path / 'manifest.csv')!r} not found. The data root "
            f"({'root=' if root is not None else DATA_ENV}={str(base)!r}) must hold {folder}/ with "
            f"its manifest.csv (see docs/data.md)."
        )
    return path


def read_manifest(path: Path) -> _Manifest:
    """Read ``manifest.csv``; class names are ordered by their integer label."""
    with open(path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    required = {"path", "class", "label"}
    if not rows or not required <= set(rows[0]):
        raise ValueError(f"{path / 'manifest.csv'} must have columns {sorted(required)} and rows")
    names: dict[int, str] = {}
    for row in rows:
        label, cls = int(row["label"]), row["class"]
        if names.setdefault(label, cls) != cls:
            raise ValueError(f"{path / 'manifest.csv'}: label {label} is used for both "
                             f"{names[label]!r} and {cls!r}")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{path / 'manifest.csv'}: labels must be 0..K-1; got {sorted(names)}")
    return _Manifest(rows, tuple(names[i] for i in range(len(names))))


def _read_image(path: Path, sha256: str | None, verify: bool, kind: str) -> np.ndarray:
    """Decode one file to ``(H, W, C)``; raises on missing, corrupt or mismatching files."""
    from slimlib._imageio import decode

    data = path.read_bytes()
    if verify and sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("sha256 does not match manifest.csv")
    array = decode(data, name=path.name, tiff=kind == "tiff-ms")
    if kind != "tiff-ms" and array.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image; got {array.dtype}")
    return np.moveaxis(array, 0, -1)


def _load_manifest_dataset(*, name: str, folder: str, split: str, root, split_of, kind: str,
                           bands: tuple[str, ...], units: str, scale: float,
                           limit_per_class: int | None, seed: int, verify: bool,
                           notes: list[str]) -> ImageDataset:
    limit_per_class = check_limit(limit_per_class)
    directory = _dataset_dir(folder, root, name)
    manifest = read_manifest(directory)
    rows = [row for row in manifest.rows if split == "all" or split_of(row) == split]
    keep = stratified_subset([int(r["label"]) for r in rows], limit_per_class, seed)
    rows = [rows[i] for i in keep]

    log = SkipLog(name)

    def decode(row: dict[str, str]) -> np.ndarray | str:
        """The image, or the reason it cannot be used (warned about in the main thread)."""
        try:
            return _read_image(directory / row["path"], row.get("sha256"), verify, kind)
        except FileNotFoundError:
            return "file is missing"
        except Exception as err:  # noqa: BLE001 - any decoder error means unreadable
            return f"unreadable ({type(err).__name__}: {err})"

    arrays = parallel_map(decode, rows, desc=f"decode {name}/{split}")
    for row, result in zip(rows, arrays, strict=True):
        if isinstance(result, str):
            log.skip(f"{folder}/{row['path']}", result)
    ok = [i for i, a in enumerate(arrays) if not isinstance(a, str)]
    shapes = {arrays[i].shape for i in ok}
    if len(shapes) > 1:
        # keep the majority shape; every other file is reported, never silently dropped
        counts: dict[tuple[int, ...], int] = {}
        for i in ok:
            counts[arrays[i].shape] = counts.get(arrays[i].shape, 0) + 1
        majority = max(counts, key=counts.get)
        for i in ok:
            if arrays[i].shape != majority:
                log.skip(f"{folder}/{rows[i]['path']}",
                         f"shape {arrays[i].shape} differs from the dataset's {majority}")
        ok = [i for i in ok if arrays[i].shape == majority]
    all_notes = list(notes) + log.finish(len(rows))
    if not ok:
        raise FileNotFoundError(f"{name}/{split}: none of the {len(rows)} images in "
                                f"{directory} could be read")
    stacked = np.stack([arrays[i] for i in ok])                   # (N, H, W, C)
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).float().mul_(scale).contiguous()
    if images.shape[1] != len(bands):
        raise ValueError(f"{name}: files have {images.shape[1]} bands; expected {len(bands)}")
    labels = torch.tensor([int(rows[i]["label"]) for i in ok], dtype=torch.int64)
    if limit_per_class is not None:
        all_notes.append(f"subset: at most {limit_per_class} images per class (seed={seed})")
    return ImageDataset(
        name=name, split=split, images=images, labels=labels, classes=manifest.classes,
        bands=bands, units=units, synthetic=False,
        paths=tuple(f"{folder}/{rows[i]['path']}" for i in ok), notes=all_notes,
    )


def load_eurosat_rgb(split: str, root=None, *, limit_per_class: int | None = None, seed: int = 0,
                     verify: bool = True) -> ImageDataset:
    """EuroSAT RGB subset: 8,000 JPEGs, 64×64, ``split`` from ``manifest.csv`` (6,400/1,600)."""
    return _load_manifest_dataset(
        name="eurosat-rgb", folder=EMBEDDED_FOLDERS["eurosat-rgb"][0], split=split, root=root,
        split_of=lambda r: r["split"], kind="rgb", bands=RGB_BANDS, units="rgb01", scale=1 / 255,
        limit_per_class=limit_per_class, seed=seed, verify=verify,
        notes=["EuroSAT RGB JPEGs are Sentinel-2 B04/B03/B02 rendered to 8-bit "
               "(≈ clip(DN/2750)·255); bands R,G,B, units rgb01 = 8-bit/255."],
    )


def load_eurosat_ms(split: str, root=None, *, limit_per_class: int | None = None, seed: int = 0,
                    verify: bool = True) -> ImageDataset:
    """EuroSAT MS subset: 270 13-band GeoTIFFs (file order B01…B12, B8A), DN/10000."""
    return _load_manifest_dataset(
        name="eurosat-ms", folder=EMBEDDED_FOLDERS["eurosat-ms"][0], split=split, root=root,
        split_of=lambda r: r["source_split"], kind="tiff-ms", bands=EUROSAT_MS_BANDS,
        units="reflectance", scale=1e-4, limit_per_class=limit_per_class, seed=seed,
        verify=verify,
        notes=["Band order is the files' order B01..B12,B8A (B8A last); Sentinel-2 L1C "
               "top-of-atmosphere DN/10000."],
    )


UCMERCED_TRAIN_PER_CLASS = 6


def _ucmerced_split(row: dict[str, str], position: dict[str, int]) -> str:
    return "train" if position[row["path"]] < UCMERCED_TRAIN_PER_CLASS else "test"


def load_ucmerced(split: str, root=None, *, limit_per_class: int | None = None, seed: int = 0,
                  verify: bool = True) -> ImageDataset:
    """UC Merced subset: 168 RGB TIFFs 256×256, 21 classes.

    The manifest has no split; slimlib defines one: within each class, files sorted by
    name, the first 6 are ``"train"`` and the remaining 2 ``"test"`` (126/42).
    """
    directory = _dataset_dir("ucmerced", root, "ucmerced")
    by_class: dict[str, list[str]] = {}
    for row in read_manifest(directory).rows:
        by_class.setdefault(row["class"], []).append(row["path"])
    position = {p: i for paths in by_class.values() for i, p in enumerate(sorted(paths))}
    return _load_manifest_dataset(
        name="ucmerced", folder=EMBEDDED_FOLDERS["ucmerced"][0], split=split, root=root,
        split_of=lambda r: _ucmerced_split(r, position), kind="rgb", bands=RGB_BANDS,
        units="rgb01", scale=1 / 255, limit_per_class=limit_per_class, seed=seed, verify=verify,
        notes=["split 'all': every image, no train/test split applied" if split == "all"
               else "Split defined by slimlib: per class, files sorted by name, first 6 train, "
                    "last 2 test."],
    )


def load_cifar10(split: str, root=None, *, limit_per_class: int | None = None, seed: int = 0,
                 verify: bool = True) -> ImageDataset:
    """CIFAR-10 subset: train = ``cifar10_train/`` (3,000), test = ``cifar10_test/`` (1,000)."""
    folder = dict(zip(("train", "test"), EMBEDDED_FOLDERS["cifar10"], strict=True))[split]
    return _load_manifest_dataset(
        name="cifar10", folder=folder, split=split, root=root, split_of=lambda r: split,
        kind="rgb", bands=RGB_BANDS, units="rgb01", scale=1 / 255,
        limit_per_class=limit_per_class, seed=seed, verify=verify,
        notes=["JPEG re-encodings (quality 75) of the official CIFAR-10 images: lossy, not "
               "pixel-identical to the binary batches."],
    )
