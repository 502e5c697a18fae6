"""Helpers shared by the entry modules: checked state-dict loading, band subsets."""

from __future__ import annotations

import dataclasses
import fnmatch
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from slimlib.specs import ModelSpec


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def load_checked(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    name: str,
    path: str | Path,
    allowed_missing: Sequence[str] = (),
    allowed_unexpected: Sequence[str] = (),
    warn_unexpected: bool = False,
) -> None:
    """``model.load_state_dict(state, strict=False)``, then insist nothing essential is off.

    ``allowed_*`` are glob patterns (e.g. ``"head.*"``). Keys missing from the checkpoint
    that match no pattern, or unexpected keys matching none (unless ``warn_unexpected``),
    raise ``ValueError`` naming them, so a wrong file never loads silently.
    """
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{name}: checkpoint {path} does not fit the architecture: {err}") from err
    missing = [k for k in result.missing_keys if not _matches(k, allowed_missing)]
    unexpected = [k for k in result.unexpected_keys if not _matches(k, allowed_unexpected)]
    if missing or (unexpected and not warn_unexpected):
        raise ValueError(
            f"{name}: checkpoint {path} does not match the architecture; "
            f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}, "
            f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}"
        )
    if unexpected:
        warnings.warn(f"{name}: ignored {len(unexpected)} checkpoint keys not in the model, "
                      f"e.g. {unexpected[:5]}", stacklevel=3)


def subset_spec(spec: ModelSpec, bands: Sequence[str] | None) -> ModelSpec:
    """``spec`` restricted to (and ordered as) ``bands``; mean/std/wavelengths follow.

    Only for wavelength-conditioned models, whose patch embedding takes any band set.
    """
    if bands is None:
        return spec
    if isinstance(bands, str) or not bands:
        raise ValueError(f"bands must be a non-empty sequence of band names; got {bands!r}")
    bands = tuple(bands)
    unknown = [b for b in bands if b not in spec.bands]
    if unknown or len(set(bands)) != len(bands):
        raise ValueError(f"{spec.name}: bands must be distinct names from {spec.bands}; "
                         f"got {bands}")
    idx = [spec.bands.index(b) for b in bands]
    wl = spec.wavelengths_um
    return dataclasses.replace(
        spec,
        bands=bands,
        mean=tuple(spec.mean[i] for i in idx),
        std=tuple(spec.std[i] for i in idx),
        wavelengths_um=tuple(wl[i] for i in idx) if wl is not None else None,
    )
