"""Shared metadata objects: what a model expects and what a dataset holds.

These two small dataclasses are the contract between :mod:`slimlib.models`,
:mod:`slimlib.data`, :mod:`slimlib.features` and the book. They carry metadata the
way torchgeo's weights objects do, so a user never has to guess band order,
normalisation or input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

#: Units of image values held by :class:`ImageDataset`.
#: ``"rgb01"``: 8-bit imagery divided by 255 (values in [0, 1]).
#: ``"reflectance"``: Sentinel-2 L1C digital numbers divided by 10 000.
#: ``"synthetic"``: values of the synthetic fallback (reflectance-like, in [0, 1]).
UNITS = ("rgb01", "reflectance", "synthetic")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to feed a registered encoder.

    Attributes:
        name: registry name, e.g. ``"ssl4eo-vits16-moco"``.
        family: ``"rs"`` (remote-sensing FM), ``"cv"`` (computer-vision baseline) or
            ``"embedded"`` (tiny models slimlib pretrains itself).
        architecture: human-readable backbone, e.g. ``"ViT-S/16"``.
        bands: input band names in the order the encoder expects them
            (Sentinel-2 names ``"B01"``…``"B12"``, ``"B8A"``; ``"R"``, ``"G"``, ``"B"`` for RGB).
        mean, std: per-band normalisation applied after conversion to ``units``.
        units: the units ``mean``/``std`` refer to (see :data:`UNITS`).
        input_size: square input side in pixels that the encoder is fed.
        patch_size: ViT patch size.
        embed_dim: width D of the returned features ``(B, D)``.
        feature: ``"cls"`` or ``"mean"`` (mean of patch tokens).
        wavelengths_um: centre wavelengths (micrometres) for wavelength-conditioned models.
        pretraining: pretraining method, e.g. ``"MoCo v3"``.
        licence: licence of the weights.
        source: where the checkpoint comes from (URL, hub id or cache path).
        requires: optional extra needed to build it (``"terratorch"``) or ``None``.
        notes: anything else a user must know.
        citation: the paper to cite for the weights.
        extra: further model-specific input facts as ``(key, value)`` pairs, e.g. Galileo's
            channel groups and month; read them with :meth:`extras`.
    """

    name: str
    family: str
    architecture: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    units: str
    input_size: int
    patch_size: int
    embed_dim: int
    feature: str = "cls"
    wavelengths_um: tuple[float, ...] | None = None
    pretraining: str = ""
    licence: str = ""
    source: str = ""
    requires: str | None = None
    notes: str = ""
    citation: str = ""
    extra: tuple[tuple[str, object], ...] = ()

    @property
    def in_chans(self) -> int:
        return len(self.bands)

    def extras(self) -> dict[str, object]:
        """:attr:`extra` as a dict."""
        return dict(self.extra)


def spec_of(model: object, spec: ModelSpec | None = None, *, required: bool = False
            ) -> ModelSpec | None:
    """The :class:`ModelSpec` to feed ``model`` with: ``spec`` if given, else ``model.spec``.

    ``required=True`` raises ``ValueError`` (saying to pass ``spec=``) when there is none;
    otherwise ``None`` is returned."""
    found = spec if spec is not None else getattr(model, "spec", None)
    if isinstance(found, ModelSpec):
        return found
    if required:
        raise ValueError(f"{type(model).__name__} has no .spec; pass spec=ModelSpec(...) so "
                         "the images can be band-matched, resized and normalised")
    return None


@dataclass
class ImageDataset:
    """An in-memory image classification split.

    Images are decoded once and kept as a float32 tensor ``(N, C, H, W)`` in the
    dataset's ``units``; labels are ``(N,)`` int64 for single-label data or
    ``(N, K)`` float32 multi-hot for multi-label data.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    units: str
    synthetic: bool = False
    paths: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W); got shape {tuple(self.images.shape)}")
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"{self.name}/{self.split}: {self.images.shape[0]} images but "
                f"{self.labels.shape[0]} labels"
            )
        if self.images.shape[1] != len(self.bands):
            raise ValueError(
                f"{self.name}/{self.split}: {self.images.shape[1]} channels but "
                f"{len(self.bands)} band names"
            )
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}; got {self.units!r}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def display_name(self) -> str:
        """Name for tables and figure titles; synthetic data is always labelled."""
        return f"{self.name} (synthetic)" if self.synthetic else self.name
