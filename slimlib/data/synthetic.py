"""Synthetic multispectral fallback with real class structure (no data files needed).

Every image mixes four material spectra (vegetation, bare soil, water, built-up) over
13 Sentinel-2 bands (ESA order). A class fixes the mean material abundances and the
spatial texture (correlation length and anisotropy of the abundance fields); images add
random fields, brightness jitter and sensor noise. Values are reflectance-like in [0, 1].
Everything is seeded: the class prototypes depend only on ``seed``; the images also on the
split, so ``"train"`` and ``"test"`` are disjoint draws from the same distribution.

It is labelled ``synthetic=True`` everywhere (tables, figures, notes) and must never be
reported as a real-data result.
"""

from __future__ import annotations

import numpy as np
import torch

from ..specs import ImageDataset
from .bands import RGB_BANDS, RGB_GAIN, S2_BANDS, S2_WAVELENGTHS_UM

#: Images per class for each split unless ``n_per_class`` is given.
DEFAULT_PER_CLASS = {"train": 50, "test": 20}
_SPLIT_ID = {"train": 1, "test": 2}


def _material_spectra() -> np.ndarray:
    """(4, 13) reflectance of vegetation, soil, water, built-up at the S2 band centres."""
    wl = np.array([S2_WAVELENGTHS_UM[b] for b in S2_BANDS])
    red_edge = 1.0 / (1.0 + np.exp(-(wl - 0.715) / 0.012))             # chlorophyll edge
    vegetation = 0.04 + 0.03 * np.exp(-((wl - 0.56) / 0.03) ** 2) + 0.34 * red_edge \
        - 0.16 * red_edge * np.clip((wl - 1.0) / 1.2, 0, 1)
    soil = 0.08 + 0.22 * np.clip((wl - 0.4) / 1.3, 0, 1)
    water = 0.09 * np.exp(-(wl - 0.44) / 0.12)
    built = 0.16 + 0.03 * np.sin(6 * wl)
    spectra = np.stack([vegetation, soil, water, built])
    atmosphere = np.ones(len(S2_BANDS))
    atmosphere[S2_BANDS.index("B09")] = 0.3                            # water-vapour band
    atmosphere[S2_BANDS.index("B10")] = 0.02                           # cirrus band
    return np.clip(spectra * atmosphere, 0.001, 1.0)


def _smooth_fields(rng: np.random.Generator, n: int, k: int, size: int, length: float,
                   anisotropy: float, angle: float) -> np.ndarray:
    """(n, k, size, size) unit-variance Gaussian random fields with the given texture."""
    white = rng.standard_normal((n, k, size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    u = np.cos(angle) * fx + np.sin(angle) * fy
    v = -np.sin(angle) * fx + np.cos(angle) * fy
    filt = np.exp(-2 * (np.pi * length) ** 2 * (u ** 2 * anisotropy ** 2 + v ** 2 / anisotropy ** 2))
    fields = np.fft.irfft2(np.fft.rfft2(white) * filt, s=(size, size))
    fields -= fields.mean(axis=(-2, -1), keepdims=True)
    return fields / (fields.std(axis=(-2, -1), keepdims=True) + 1e-8)


def generate(split: str, *, num_classes: int = 10, n_per_class: int | None = None, size: int = 32,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 13, size, size)`` float32 in S2 band order and labels ``(N,)`` int64."""
    if split not in _SPLIT_ID:
        raise ValueError(f"synthetic splits are {tuple(_SPLIT_ID)}; got {split!r}")
    for key, value, low in (("num_classes", num_classes, 2), ("size", size, 4),
                            ("n_per_class", n_per_class, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise ValueError(f"{key} must be an int >= {low}; got {value!r}")
    n = DEFAULT_PER_CLASS[split] if n_per_class is None else n_per_class
    spectra = _material_spectra()                                     # (4, 13)
    proto = np.random.default_rng([seed, 0])
    abundance = proto.dirichlet(np.full(4, 1.5), size=num_classes)    # (K, 4)
    lengths = proto.uniform(0.8, 5.0, num_classes)
    anisotropy = proto.uniform(1.0, 2.5, num_classes)
    angles = proto.uniform(0, np.pi, num_classes)
    tint = proto.normal(1.0, 0.03, (num_classes, len(S2_BANDS)))     # class-specific spectral tint

    rng = np.random.default_rng([seed, _SPLIT_ID[split]])
    images, labels = [], []
    for c in range(num_classes):
        fields = _smooth_fields(rng, n, 4, size, lengths[c], anisotropy[c], angles[c])
        logits = np.log(abundance[c] + 1e-3)[None, :, None, None] + 1.6 * fields
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)                 # (n, 4, H, W)
        cube = np.einsum("nkhw,kb->nbhw", weights, spectra * tint[c])
        cube *= rng.normal(1.0, 0.15, (n, 1, 1, 1))                   # illumination
        cube += rng.normal(0.0, 0.004, cube.shape)                    # sensor noise
        images.append(cube)
        labels.append(np.full(n, c))
    order = rng.permutation(n * num_classes)
    x = np.clip(np.concatenate(images), 0.0, 1.0).astype(np.float32)[order]
    y = np.concatenate(labels).astype(np.int64)[order]
    return x, y


def _classes(num_classes: int) -> tuple[str, ...]:
    return tuple(f"synthetic-class-{i}" for i in range(num_classes))


def load_synthetic_ms(split: str, root=None, *, num_classes: int = 10,
                      n_per_class: int | None = None, size: int = 32, seed: int = 0
                      ) -> ImageDataset:
    """Synthetic 13-band Sentinel-2-like data (``units="synthetic"``, ``synthetic=True``)."""
    x, y = generate(split, num_classes=num_classes, n_per_class=n_per_class, size=size, seed=seed)
    return ImageDataset(
        name="synthetic-ms", split=split, images=torch.from_numpy(x), labels=torch.from_numpy(y),
        classes=_classes(num_classes), bands=S2_BANDS, units="synthetic", synthetic=True,
        notes=[f"SYNTHETIC data (seed={seed}): material-mixture spectra with class-dependent "
               "abundances and texture; not a real-data result."],
    )


def load_synthetic_rgb(split: str, root=None, *, num_classes: int = 10,
                       n_per_class: int | None = None, size: int = 32, seed: int = 0
                       ) -> ImageDataset:
    """True-colour rendering of :func:`load_synthetic_ms` (B04/B03/B02 × RGB_GAIN, clipped)."""
    ms = load_synthetic_ms(split, num_classes=num_classes, n_per_class=n_per_class, size=size,
                           seed=seed)
    idx = [S2_BANDS.index(b) for b in ("B04", "B03", "B02")]
    rgb = (ms.images[:, idx] * RGB_GAIN).clamp_(0, 1).contiguous()
    return ImageDataset(
        name="synthetic-rgb", split=split, images=rgb, labels=ms.labels, classes=ms.classes,
        bands=RGB_BANDS, units="synthetic", synthetic=True,
        notes=ms.notes + ["RGB = clip(RGB_GAIN * (B04, B03, B02), 0, 1)."],
    )
