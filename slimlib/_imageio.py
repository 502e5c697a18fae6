"""The one image decoder for user folders: a file -> float32 ``(C, H, W)`` in stored units.

Used by :mod:`slimlib.inputs` (folders handed to ``diagnose``) and by ``python -m
slimlib.train`` (image folders for pretraining); each applies its own unit rule on top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "TIFF_SUFFIXES", "read_image_chw"]

#: 8-bit formats Pillow decodes (read as RGB).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
#: TIFFs, read with tifffile in their stored dtype (any band count).
TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def read_image_chw(path: str | Path) -> tuple[np.ndarray, np.dtype]:
    """Decode ``path`` to float32 ``(C, H, W)`` holding the stored values, plus the stored dtype.

    TIFFs are read with tifffile (a 2-D image gets one channel; channels-last ``(H, W, C)``
    with fewer channels than rows is moved to the front); other formats are converted to RGB
    by Pillow (values 0..255, dtype ``uint8``). No scaling: callers divide 8-bit data by 255
    or apply their reflectance rule.
    """
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        raw = tifffile.imread(path)
        dtype = np.asarray(raw).dtype
        arr = np.asarray(raw, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.shape[-1] < arr.shape[0]:  # (H, W, C) -> (C, H, W)
            arr = np.moveaxis(arr, -1, 0)
        return np.ascontiguousarray(arr), dtype
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    return np.ascontiguousarray(arr), np.dtype(np.uint8)
