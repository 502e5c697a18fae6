"""Feed a dataset to a model: select and order bands, convert units, resize, normalise.

Rules (also in docs/data.md, "Band rules"):

1. Bands are matched **by name** and put in the order of ``spec.bands``; the dataset's
   own order never matters (EuroSAT's B8A-last files feed SSL4EO's B8A-ninth weights).
2. Aliases ``R,G,B ↔ B04,B03,B02`` are used only when the data are Sentinel-2
   reflectance (or synthetic multispectral): an RGB model then sees a true-colour
   rendering ``clip(reflectance · RGB_GAIN, 0, 1)``.
3. 8-bit RGB imagery (``units="rgb01"``) is **refused** by a multispectral model unless
   ``rgb_policy="zero-fill"``: R,G,B then feed B04,B03,B02 (as ``rgb / RGB_GAIN``) and every
   other band is set to its normalisation mean, i.e. 0 after normalisation. This is
   recorded in ``dataset.notes`` and warned about.
4. Other missing bands raise ``ValueError`` naming them, unless listed in
   ``fill_missing`` (same mean fill, recorded).
5. Resizing to ``spec.input_size`` is bilinear with antialiasing; normalisation is
   ``(x - mean) / std`` per band in ``spec.units``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..specs import UNITS, ImageDataset, ModelSpec
from ._common import check_memory
from .bands import RGB_BANDS, RGB_GAIN, RGB_TO_S2, S2_TO_RGB, check_band_names, is_rgb

RGB_POLICIES = ("refuse", "zero-fill")


def _kind(units: str, bands: Sequence[str]) -> str:
    """Effective units: synthetic data count as rgb01 when all bands are R,G,B, else reflectance."""
    if units == "synthetic":
        return "rgb01" if all(is_rgb(b) for b in bands) else "reflectance"
    return units


@dataclass(frozen=True)
class _Channel:
    target: str
    source: int | None            # index into the input channels; None = mean fill
    convert: str                  # "none", "refl->rgb", "rgb->refl", "fill"
    how: str                      # human-readable description


@dataclass(frozen=True)
class BandPlan:
    """How every band of ``spec`` is obtained from the input channels."""

    channels: tuple[_Channel, ...]
    mean: torch.Tensor
    std: torch.Tensor
    size: int
    notes: tuple[str, ...]

    def describe(self) -> list[tuple[str, str]]:
        """``[(target band, where it comes from), …]``."""
        return [(c.target, c.how) for c in self.channels]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` float → ``(N, C_spec, size, size)`` float32, normalised."""
        n = x.shape[0]
        out = torch.zeros((n, len(self.channels), *x.shape[-2:]), dtype=torch.float32)
        for j, ch in enumerate(self.channels):
            if ch.source is None:
                continue
            v = x[:, ch.source].float()
            if ch.convert == "refl->rgb":
                v = (v * RGB_GAIN).clamp(0.0, 1.0)
            elif ch.convert == "rgb->refl":
                v = v / RGB_GAIN
            out[:, j] = v
        if out.shape[-2:] != (self.size, self.size):
            out = F.interpolate(out, size=(self.size, self.size), mode="bilinear",
                                align_corners=False, antialias=True)
        out = (out - self.mean[None, :, None, None]) / self.std[None, :, None, None]
        for j, ch in enumerate(self.channels):
            if ch.source is None:
                out[:, j] = 0.0           # the band's mean, in normalised units
        return out.contiguous()


def band_plan(bands: Sequence[str], units: str, spec: ModelSpec, *, rgb_policy: str = "refuse",
              fill_missing: Sequence[str] = ()) -> BandPlan:
    """Work out how to build ``spec``'s input from channels named ``bands`` in ``units``.

    Raises:
        ValueError: for missing bands, refused RGB→multispectral use, or a malformed spec.
    """
    bands = check_band_names(bands, "input bands")
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}; got {units!r}")
    if rgb_policy not in RGB_POLICIES:
        raise ValueError(f"rgb_policy must be one of {RGB_POLICIES}; got {rgb_policy!r}")
    target = check_band_names(spec.bands, f"spec {spec.name!r} bands")
    if len(spec.mean) != len(target) or len(spec.std) != len(target):
        raise ValueError(f"spec {spec.name!r} has {len(target)} bands but {len(spec.mean)} means "
                         f"and {len(spec.std)} stds")
    if any(s <= 0 for s in spec.std):
        raise ValueError(f"spec {spec.name!r} has non-positive std {spec.std}")
    if spec.input_size < 1:
        raise ValueError(f"spec {spec.name!r} has input_size {spec.input_size}")
    src_kind, dst_kind = _kind(units, bands), _kind(spec.units, target)
    rgb_only = src_kind == "rgb01"
    fill = set(fill_missing)

    channels, missing, refused = [], [], []
    for t in target:
        if t in bands:
            i = bands.index(t)
            conv = _conversion(src_kind, dst_kind)
            if conv == "rgb->refl" and rgb_policy == "refuse":
                refused.append(t)
                continue
            channels.append(_Channel(t, i, conv, f"{t}" + _suffix(conv)))
        elif t in RGB_TO_S2 and RGB_TO_S2[t] in bands and src_kind == "reflectance":
            i = bands.index(RGB_TO_S2[t])
            conv = _conversion(src_kind, dst_kind)
            channels.append(_Channel(t, i, conv, f"{RGB_TO_S2[t]} (alias)" + _suffix(conv)))
        elif t in S2_TO_RGB and S2_TO_RGB[t] in bands:
            i = bands.index(S2_TO_RGB[t])
            conv = _conversion(src_kind, dst_kind)
            if src_kind == "reflectance":
                channels.append(_Channel(t, i, conv, f"{S2_TO_RGB[t]} (alias)" + _suffix(conv)))
            elif rgb_policy == "zero-fill":
                channels.append(_Channel(t, i, "rgb->refl", f"{S2_TO_RGB[t]} / RGB_GAIN "
                                                            "(rgb_policy='zero-fill')"))
            else:
                refused.append(t)
        elif t in fill or (rgb_only and rgb_policy == "zero-fill"):
            channels.append(_Channel(t, None, "fill", "mean fill (0 after normalisation)"))
        else:
            missing.append(t)
    if refused or (rgb_only and missing and dst_kind == "reflectance"):
        raise ValueError(
            f"RGB-only data (bands {bands}, units {units!r}) cannot feed {spec.name!r}, which "
            f"expects Sentinel-2 bands {target} in {spec.units!r}: 8-bit RGB is not reflectance. "
            f"Default rgb_policy='refuse'. Opt in with rgb_policy='zero-fill' to map R,G,B to "
            f"B04,B03,B02 (divided by RGB_GAIN={RGB_GAIN:.3f}) and fill every other band with its "
            f"mean; the result is then not comparable with multispectral inputs.")
    if missing:
        raise ValueError(
            f"input lacks bands {missing} required by {spec.name!r} (input bands {bands}). "
            f"Use data with these bands or pass fill_missing={tuple(missing)} to fill them with "
            f"their normalisation mean (recorded in the notes).")
    notes = []
    filled = [c.target for c in channels if c.source is None]
    if rgb_only and rgb_policy == "zero-fill" and dst_kind == "reflectance":
        notes.append(f"rgb_policy='zero-fill' for {spec.name}: R,G,B/RGB_GAIN → B04,B03,B02; "
                     f"bands {filled} filled with their mean (0 after normalisation)")
    elif filled:
        notes.append(f"bands {filled} missing for {spec.name}: filled with their mean "
                     f"(fill_missing)")
    if any(c.convert == "refl->rgb" for c in channels):
        notes.append(f"reflectance rendered as true colour for {spec.name}: "
                     f"clip(reflectance * {RGB_GAIN:.3f}, 0, 1)")
    return BandPlan(tuple(channels), torch.tensor(spec.mean, dtype=torch.float32),
                    torch.tensor(spec.std, dtype=torch.float32), int(spec.input_size),
                    tuple(notes))


def _conversion(src: str, dst: str) -> str:
    if src == dst:
        return "none"
    if src == "reflectance" and dst == "rgb01":
        return "refl->rgb"
    if src == "rgb01" and dst == "reflectance":
        return "rgb->refl"
    raise ValueError(f"no conversion from units {src!r} to {dst!r}")


def _suffix(conv: str) -> str:
    return {"none": "", "refl->rgb": " · RGB_GAIN, clipped", "rgb->refl": " / RGB_GAIN"}.get(conv, "")


def _resolve_input(data: ImageDataset | torch.Tensor, spec: ModelSpec,
                   bands: Sequence[str] | None, units: str | None
                   ) -> tuple[torch.Tensor, tuple[str, ...], str]:
    if isinstance(data, ImageDataset):
        if bands is not None or units is not None:
            raise ValueError("bands= and units= describe raw tensors; an ImageDataset carries its "
                             "own .bands and .units")
        return data.images, tuple(data.bands), data.units
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"expected an ImageDataset or a torch.Tensor; got {type(data).__name__}")
    if data.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(data.shape)}")
    if bands is None:
        if data.shape[1] != spec.in_chans:
            raise ValueError(
                f"tensor has {data.shape[1]} channels but {spec.name!r} expects {spec.in_chans} "
                f"({spec.bands}); pass bands= naming the tensor's channels")
        bands = spec.bands
    bands = tuple(bands)
    if data.shape[1] != len(bands):
        raise ValueError(f"tensor has {data.shape[1]} channels but bands= names {len(bands)}: "
                         f"{bands}")
    return data, bands, units or spec.units


def _record(data: ImageDataset | torch.Tensor, plan: BandPlan) -> None:
    for note in plan.notes:
        if isinstance(data, ImageDataset) and note not in data.notes:
            data.notes.append(note)
        if "mean" in note:
            warnings.warn(note, UserWarning, stacklevel=3)


def prepare(data: ImageDataset | torch.Tensor, spec: ModelSpec, *,
            bands: Sequence[str] | None = None, units: str | None = None,
            rgb_policy: str = "refuse", fill_missing: Sequence[str] = (),
            max_gib: float | None = 4.0) -> torch.Tensor:
    """Turn a dataset (or a raw ``(N, C, H, W)`` tensor) into model input.

    Args:
        data: an :class:`ImageDataset`, or a tensor whose channels are named by ``bands``
            (default: ``spec.bands``, which then must match the channel count).
        spec: the model's :class:`ModelSpec` (bands, units, mean/std, input_size).
        units: units of a raw tensor (default ``spec.units``).
        rgb_policy: ``"refuse"`` (default) or ``"zero-fill"``, see the module docstring.
        fill_missing: band names that may be mean-filled when absent.
        max_gib: refuse outputs larger than this; use :func:`iter_prepared` to chunk.

    Returns:
        float32 tensor ``(N, len(spec.bands), spec.input_size, spec.input_size)``.
    """
    images, names, unit = _resolve_input(data, spec, bands, units)
    plan = band_plan(names, unit, spec, rgb_policy=rgb_policy, fill_missing=fill_missing)
    check_memory(images.shape[0], (len(plan.channels), plan.size, plan.size), max_gib,
                 f"prepare() for {spec.name}", "use iter_prepared(dataset, spec, batch_size) to "
                 "process it in chunks, or pass a larger max_gib=")
    _record(data, plan)
    return plan.apply(images)


def iter_prepared(data: ImageDataset, spec: ModelSpec, batch_size: int = 256, *,
                  rgb_policy: str = "refuse", fill_missing: Sequence[str] = ()
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of :func:`prepare`'d images and their labels, in order.

    Memory stays bounded by one batch (EuroSAT RGB at 224² is 4.8 GB in one piece).
    """
    if not isinstance(data, ImageDataset):
        raise TypeError(f"iter_prepared expects an ImageDataset; got {type(data).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    plan = band_plan(data.bands, data.units, spec, rgb_policy=rgb_policy,
                     fill_missing=fill_missing)
    _record(data, plan)
    for start in range(0, len(data), batch_size):
        stop = start + batch_size
        yield plan.apply(data.images[start:stop]), data.labels[start:stop]


__all__ = ["RGB_BANDS", "RGB_POLICIES", "BandPlan", "band_plan", "iter_prepared", "prepare"]
