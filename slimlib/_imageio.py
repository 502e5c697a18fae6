"""The one image reader: a file (or its bytes) -> ``(C, H, W)`` in its stored data type, and the
one rule that turns stored values into model units.

Used by :mod:`slimlib.diagnosis._inputs` (folders handed to ``diagnose``), ``python -m slimlib.train``
(image folders for pretraining) and the book's embedded datasets
(:mod:`slimlib.data.embedded`).

Units come from the stored data type and the band names, never from the pixel values
(:func:`to_units`):

* 8-bit (any format) -> ``/ 255``, units ``rgb01``; the bands are R, G, B.
* 16-bit integers (PNG ``I;16``, TIFF ``uint16``/``int16``) -> the scaling named by ``scale``
  (:data:`SCALES`). Without ``scale``, data whose band names are all Sentinel-2 bands get
  ``reflectance10000`` (L1C digital numbers / 10 000, the convention of every Sentinel-2
  product slimlib reads); anything else is refused with a message naming the option.
* float TIFFs -> as stored (``scale='stored'``); units ``rgb01`` for R, G, B, else
  ``reflectance``.

A file that cannot be decoded (empty, truncated, not an image) raises ``ValueError`` naming
the file in one line.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from slimlib.bands import RGB_BANDS, is_s2

__all__ = ["IMAGE_SUFFIXES", "TIFF_SUFFIXES", "SCALES", "decode", "read_stored",
           "read_image_chw", "to_units", "read_image"]

#: Formats Pillow decodes (8-bit; 16-bit grayscale PNGs keep their 16 bits).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
#: TIFFs, read with tifffile in their stored dtype (any band count).
TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")

#: How non-8-bit data become model units: name -> (factor, units or ``None`` = from the bands).
SCALES: dict[str, tuple[float, str | None]] = {
    "reflectance10000": (1e-4, "reflectance"),   # Sentinel-2 L1C digital numbers / 10 000
    "uint16max": (1.0 / 65535.0, "rgb01"),        # full 16-bit range -> [0, 1], R G B only
    "stored": (1.0, None),                       # values as stored (float data)
}


class _Unreadable(ValueError):
    pass


def _png_depth(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR chunk, or ``None`` for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26 and data[12:16] == b"IHDR":
        return data[24], data[25]
    return None


def decode(data: bytes, *, name: str, tiff: bool | None = None) -> np.ndarray:
    """Decode the bytes of one image file to ``(C, H, W)`` in the stored dtype.

    Args:
        data: the file's bytes.
        name: the file name (for the suffix, when ``tiff`` is ``None``, and for messages).
        tiff: read with tifffile (``None``: from the suffix of ``name``).

    TIFFs keep every band (a 2-D image gets one channel; channels-last ``(H, W, C)`` with
    fewer channels than rows is moved to the front). Pillow formats: 8-bit images are
    converted to RGB (grayscale repeated, palette expanded, alpha dropped); 16-bit grayscale
    PNGs are one ``uint16`` channel. 16-bit colour PNGs (which Pillow would cut to 8 bits)
    are refused.

    Raises:
        ValueError: the file is empty or cannot be decoded (the message names it).
    """
    if not data:
        raise _Unreadable(f"{name}: empty file (0 bytes); remove it or replace it with an image")
    if tiff is None:
        tiff = Path(name).suffix.lower() in TIFF_SUFFIXES
    try:
        if tiff:
            import tifffile

            arr = np.asarray(tifffile.imread(io.BytesIO(data)))
            if arr.ndim == 2:
                arr = arr[None]
            elif arr.ndim == 3 and arr.shape[-1] < arr.shape[0]:  # (H, W, C) -> (C, H, W)
                arr = np.moveaxis(arr, -1, 0)
            if arr.ndim != 3:
                raise _Unreadable(f"{name}: a TIFF of shape {arr.shape}; expected one image "
                                  "(H, W), (H, W, C) or (C, H, W)")
            return np.ascontiguousarray(arr)
        depth = _png_depth(data)
        if depth is not None and depth[0] == 16 and depth[1] != 0:
            raise _Unreadable(f"{name}: a 16-bit colour PNG (Pillow reads it as 8 bits); save "
                              "it as a 16-bit TIFF (tifffile.imwrite) to keep its values")
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L") or (im.mode == "I" and depth is not None
                                                         and depth[0] == 16):
                return np.asarray(im, dtype=np.uint16)[None].copy()
            if im.mode in ("I", "F"):
                raise _Unreadable(f"{name}: a {im.mode!r} image (32-bit); save it as a TIFF")
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))
    except _Unreadable:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder error means unreadable
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{name}: not a readable image ({type(err).__name__}: {detail}); "
                         "remove it or replace it with a valid file") from None


def read_stored(path: str | Path) -> np.ndarray:
    """:func:`decode` of the file at ``path`` (``(C, H, W)``, stored dtype)."""
    path = Path(path)
    return decode(path.read_bytes(), name=str(path))


def read_image_chw(path: str | Path) -> tuple[np.ndarray, np.dtype]:
    """``path`` as float32 ``(C, H, W)`` holding the stored values, plus the stored dtype."""
    arr = read_stored(path)
    return np.ascontiguousarray(arr, dtype=np.float32), arr.dtype


def _is_s2(bands: tuple[str, ...]) -> bool:
    return bool(bands) and all(is_s2(b) for b in bands)


def to_units(arr: np.ndarray, *, bands: tuple[str, ...] | None, scale: str | None = None,
             name: str = "image") -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Stored ``(C, H, W)`` values -> float32 model inputs, their units and band names.

    Args:
        arr: stored values (:func:`decode`).
        bands: one name per channel; ``None``: R, G, B for 3-channel (or grayscale, repeated)
            images; other data must name their bands.
        scale: how to scale data that are not 8-bit (a key of :data:`SCALES`); ``None``:
            ``reflectance10000`` for Sentinel-2 band names, ``stored`` for float data, a
            refusal otherwise. 8-bit data are always divided by 255.
        name: the file, for messages.

    Raises:
        ValueError: a band count that does not match, an unknown ``scale``, or 16-bit data
            whose scaling cannot be told from the band names (the message names ``scale``).
    """
    if scale is not None and scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    dtype = arr.dtype
    channels = arr.shape[0]
    if dtype == np.uint8 and bands is not None and tuple(bands) != RGB_BANDS:
        raise ValueError(f"{name}: 8-bit images hold the bands R, G, B; got bands= "
                         f"{tuple(bands)}")
    if bands is None:
        if channels == 1 and dtype.kind in "ui":
            arr = np.repeat(arr, 3, axis=0)
            channels = 3
        if channels != 3:
            raise ValueError(f"{name}: {channels}-band {dtype} data need bands= (one name per "
                             "channel, e.g. B01 … B12, B8A for Sentinel-2); CLI --bands")
        bands = RGB_BANDS
    bands = tuple(bands)
    if channels == 1 and len(bands) == 3 and dtype.kind in "ui":
        arr = np.repeat(arr, 3, axis=0)
        channels = 3
    if channels != len(bands):
        raise ValueError(f"{name} has {channels} channels but bands= names {len(bands)} "
                         f"({', '.join(bands)}); give one band name per channel")
    rgb = bands == RGB_BANDS
    if dtype == np.uint8:
        if scale is not None:
            raise ValueError(f"{name}: 8-bit data are always divided by 255; scale= applies "
                             "to 16-bit and float data only (drop --scale)")
        if not rgb:
            raise ValueError(f"{name}: 8-bit images hold the bands R, G, B; got bands= "
                             f"{bands}")
        return (arr.astype(np.float32) / 255.0), "rgb01", bands
    if dtype.kind in "ui":
        if scale is None and _is_s2(bands):
            scale = "reflectance10000"
        if scale is None or scale == "stored":
            raise ValueError(
                f"{name}: {dtype} data with bands {', '.join(bands)}: say how to scale them: "
                "scale='reflectance10000' (Sentinel-2 digital numbers / 10 000, units "
                "reflectance) or scale='uint16max' (/ 65 535 -> [0, 1], units rgb01, bands "
                "R G B); CLI --scale")
    elif dtype.kind == "f":
        scale = scale or "stored"
    else:
        raise ValueError(f"{name}: unsupported data type {dtype}")
    factor, units = SCALES[scale]
    if units == "rgb01" and not rgb:
        raise ValueError(f"{name}: scale={scale!r} gives units rgb01, which need bands R, G, B; "
                         f"got {bands}")
    if units is None:
        units = "rgb01" if rgb else "reflectance"
    out = arr.astype(np.float32)
    if factor != 1.0:
        out *= np.float32(factor)
    return out, units, bands


def read_image(path: str | Path, *, bands: tuple[str, ...] | None = None,
               scale: str | None = None) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """One file as float32 ``(C, H, W)`` model inputs, its units and its band names
    (:func:`read_stored` then :func:`to_units`)."""
    return to_units(read_stored(path), bands=bands, scale=scale, name=str(path))
