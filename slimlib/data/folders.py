"""Image folders in the ``ImageFolder`` layout as :class:`~slimlib.specs.ImageDataset` pairs
(used by :func:`slimlib.diagnosis.resolve_data` for ``diagnose``).

``root/train/<class>/*`` and ``root/test/<class>/*``, or ``root/<class>/*`` split here (a
stratified, seeded ``test_fraction`` per class). Every file goes through the one reader
(:func:`slimlib._imageio.read_image`): units from the stored data type and the band names.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from slimlib._imageio import IMAGE_SUFFIXES, TIFF_SUFFIXES, read_image
from slimlib.specs import ImageDataset

__all__ = ["load_image_folder", "read_image_file"]


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + TIFF_SUFFIXES)


def read_image_file(path: Path, bands: tuple[str, ...] | None, scale: str | None = None
          ) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """One image as float32 (C, H, W), its units and its band names: the one reader
    (:func:`slimlib._imageio.read_image`; units from the stored data type and the band names)."""
    return read_image(path, bands=bands, scale=scale)


def _stack(paths: list[Path], labels: list[int], classes: tuple[str, ...], name: str, split: str,
           bands: tuple[str, ...] | None, progress: bool, scale: str | None = None
           ) -> ImageDataset:
    from tqdm.auto import tqdm

    arrays, units, names = [], set(), set()
    for p in tqdm(paths, desc=f"reading {split}", unit="img", disable=not progress, leave=False):
        arr, unit, band_names = read_image_file(p, bands, scale)
        arrays.append(arr)
        units.add(unit)
        names.add(band_names)
    if len(units) > 1 or len(names) > 1:
        raise ValueError(f"{name}: mixes kinds of images (units {sorted(units)}, bands "
                         f"{sorted(names)}); use one kind per dataset")
    shapes = Counter(a.shape for a in arrays)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = next(p for p, a in zip(paths, arrays, strict=True) if a.shape != common)
        raise ValueError(f"{name}: images differ in size ({len(shapes)} shapes, e.g. {common} "
                         f"and {odd} with another); resize them to one size first")
    if not arrays:
        raise ValueError(f"{name}: the {split} split has no images; put at least two images in "
                         "every class folder (one for train, one for test) or give train/ and "
                         "test/ folders")
    unit = units.pop()
    band_names = names.pop()
    return ImageDataset(name=name, split=split, images=torch.from_numpy(np.stack(arrays)),
                        labels=torch.tensor(labels, dtype=torch.int64), classes=classes,
                        bands=band_names, units=unit, paths=tuple(map(str, paths)))


def load_image_folder(root: Path, bands: tuple[str, ...] | None, limit_per_class: int | None,
                 test_fraction: float, seed: int, progress: bool, scale: str | None = None
                 ) -> tuple[ImageDataset, ImageDataset]:
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {str(root)!r} does not exist; pass a registry "
                                "dataset name or a folder root/<class>/<images> (ImageFolder)")
    split_dirs = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if len(split_dirs) == 1:
        raise ValueError(f"{root}: has {next(iter(split_dirs))}/ but not the other of train/ and "
                         "test/; give both, or put class folders directly under the root")
    sources = split_dirs or {"all": root}
    classes = tuple(p.name for p in _class_folders(next(iter(sources.values()))))
    if len(classes) < 2:
        raise ValueError(f"{root}: found {len(classes)} class folder(s); an ImageFolder layout "
                         "needs root/<class>/<image files> with at least two classes")
    rng = np.random.default_rng(seed)
    per_split: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for split, base in sources.items():
        names = tuple(p.name for p in _class_folders(base))
        if names != classes:
            raise ValueError(f"{root}: train/ and test/ hold different classes ({classes} vs "
                             f"{names})")
        for label, cls in enumerate(classes):
            files = _files(base / cls)
            if limit_per_class is not None:
                limit = limit_per_class * (1 if split != "all" else 2)
                files = [files[i] for i in sorted(rng.permutation(len(files))[:limit])]
            if split == "all":
                order = rng.permutation(len(files))
                n_test = max(1, round(test_fraction * len(files))) if len(files) > 1 else 0
                parts = {"test": [files[i] for i in sorted(order[:n_test])],
                         "train": [files[i] for i in sorted(order[n_test:])]}
            else:
                parts = {split: files}
            for s, fs in parts.items():
                per_split[s][0].extend(fs)
                per_split[s][1].extend([label] * len(fs))
    name = root.name or str(root)
    return tuple(_stack(*per_split[s], classes, name, s, bands, progress,  # type: ignore[return-value]
                        scale)
                 for s in ("train", "test"))
