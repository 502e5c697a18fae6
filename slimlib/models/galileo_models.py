"""Registry entries for Galileo-nano: ``galileo-nano`` (13-band S2) and ``galileo-nano-rgb``.

The model code is slimlib's own (:mod:`slimlib.models.galileo`); the weights are the authors'
published ``encoder.pt`` (NASA Harvest, MIT), loaded with strict key checking and verified by
sha256. Both entries share one checkpoint and one architecture; they differ in which channel
groups get tokens and in what the input holds.

**13-band mode** (``galileo-nano``, for ``eurosat-ms``): the input is the ten Sentinel-2
bands of Galileo's groups, in Galileo's order ``B02 B03 B04 B05 B06 B07 B08 B8A B11 B12``,
as reflectance (DN / 10 000). ``slimlib.data.prepare`` picks them **by name** from the EuroSAT
GeoTIFF order (``B01 ... B12, B8A``: B8A is last there, ``EUROSAT_MS_INDEX`` below) and drops
B01, B09 and B10, which no Galileo group holds. Groups S2_RGB, S2_Red_Edge, S2_NIR_10m,
S2_NIR_20m and S2_SWIR get tokens; S1, NDVI and every non-S2 modality are masked.

**RGB mode** (``galileo-nano-rgb``, for ``eurosat-rgb``, ``ucmerced``): the input is 8-bit RGB
(``units="rgb01"``, channels R, G, B). Only the S2_RGB group gets tokens (fed B02, B03, B04 =
B, G, R); every other group is masked. 8-bit values are read as reflectance through the gain
slimlib uses everywhere, ``reflectance = rgb01 / RGB_GAIN`` (``RGB_GAIN = 1 / 0.275``: a JPEG
value of 255 is reflectance 0.275, fitted on the 270 EuroSAT JPEG/GeoTIFF pairs, see
``docs/data.md``), then normalised with the same statistics as the 13-band mode. The spec
folds both steps into a plain mean/std in rgb01 units. ``rgb_gain=`` changes the gain;
``docs/models.md`` compares gains by k-NN.

**Normalisation** (both modes): the authors' ``(x - (mean - 2 std)) / (4 std)`` with their
"OURS" Sentinel-2 statistics (``src/eval/preprocess.py``: ``OURS_S2_MEAN``/``OURS_S2_STD``,
DN), rewritten as ``(x - mean') / std'`` with ``mean' = mean - 2 std`` and ``std' = 4 std``,
divided by 10 000 for reflectance units.

**Patch size**: 4 (default) or 8: ``models.load("galileo-nano", patch_size=8)``, or the
registered names ``galileo-nano-p8`` / ``galileo-nano-rgb-p8`` (same weights, patch 8 by
default) for sweeps that take plain names. The stored 8 x 8 kernels are resampled for 4
(FlexiViT pseudo-inverse). Default 4 because it is the more accurate at full width and is the
authors' protocol: full-width k-NN on EuroSAT 13-band 0.780 (patch 4) vs 0.715 (patch 8),
measured with slimlib's implementation and identical to the authors' numbers; at s <= 0.1
both give about 0.57-0.61. Patch 4 has 4x the tokens (1,280 vs 320 for 13-band 64 px; 256 vs
64 in RGB mode) and costs about 10x the time on CPU (0.34 vs 0.032 s per 13-band image, one
thread; ``docs/models.md``), so time-bound builds should use the ``-p8`` names.

**Feature**: mean of the exit-normed tokens over all unmasked tokens (the authors'
``average_tokens``), ``(B, 128)``. Month index 6 (July) and one timestep, as in the authors'
EuroSAT evaluation.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from numbers import Real

import torch

from slimlib.data.bands import EUROSAT_MS_BANDS, RGB_GAIN, RGB_TO_S2
from slimlib.models.download import Checkpoint, read_state_dict, resolve
from slimlib.models.encoder import Encoder
from slimlib.models.entry import ModelEntry
from slimlib.models.galileo import (
    PATCH_SIZES,
    S2_GROUPS,
    SPACE_TIME_GROUPS,
    GalileoNano,
)
from slimlib.specs import ModelSpec

__all__ = ["ENTRIES", "GalileoEncoder", "GALILEO_S2_BANDS", "EUROSAT_MS_INDEX", "SHA256",
           "DEFAULT_PATCH_SIZE", "MONTH"]

#: sha256 of the published ``models/nano/encoder.pt``.
SHA256 = "eab6acacf527886a508a555bc24efe4b4a2cf91b162e84cd1c4a1807e942180c"
CHECKPOINT = Checkpoint.from_hf("nasaharvest/galileo", "models/nano/encoder.pt",
                                local_name="galileo-nano/encoder.pt", sha256=SHA256)
DEFAULT_PATCH_SIZE = 4
#: Month index fed to the month embedding (0 = January), as in the authors' EuroSAT eval.
MONTH = 6

#: The ten Sentinel-2 bands of Galileo's groups, in the model's order.
GALILEO_S2_BANDS: tuple[str, ...] = tuple(b for g in S2_GROUPS for b in SPACE_TIME_GROUPS[g])
#: Index of each of :data:`GALILEO_S2_BANDS` in the EuroSAT GeoTIFF band order (B8A last).
EUROSAT_MS_INDEX: tuple[int, ...] = tuple(EUROSAT_MS_BANDS.index(b) for b in GALILEO_S2_BANDS)

#: The authors' "OURS" S2 statistics in DN, 13-band order B01..B08, B8A, B09..B12
#: (``nasaharvest/galileo`` ``src/eval/preprocess.py``; B01/B09/B10 are imputed there).
_OURS_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
               "B11", "B12")
_OURS_MEAN_DN = (1395.3408730676722, 1395.3408730676722, 1338.4026921784578, 1343.09883810357,
                 1543.8607982512297, 2186.2022069512263, 2525.0932853316694,
                 2410.3377187373408, 2750.2854646886753, 2750.2854646886753,
                 2234.911100061487, 2234.911100061487, 1474.5311266077113)
_OURS_STD_DN = (917.7041440370853, 917.7041440370853, 913.2988423581528, 1092.678723527555,
                1047.2206083460424, 1048.0101611156767, 1143.6903026819996, 1098.979177731649,
                1204.472755085893, 1204.472755085893, 1145.9774063078878, 1145.9774063078878,
                980.2429840007796)


def _reflectance_stats(bands: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Plain mean/std (reflectance) equal to the authors' ``(x-(m-2s))/(4s)`` on DN."""
    idx = [_OURS_BANDS.index(b) for b in bands]
    mean = tuple((_OURS_MEAN_DN[i] - 2 * _OURS_STD_DN[i]) / 10_000 for i in idx)
    std = tuple(4 * _OURS_STD_DN[i] / 10_000 for i in idx)
    return mean, std


def _rgb_stats(gain: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The same normalisation for R, G, B in rgb01 units, with reflectance = rgb01 / gain."""
    mean, std = _reflectance_stats(tuple(RGB_TO_S2[c] for c in ("R", "G", "B")))
    return tuple(m * gain for m in mean), tuple(s * gain for s in std)


class GalileoEncoder(Encoder):
    """``(B, C, H, W)`` normalised bands -> ``(B, 128)``: Galileo tokens of the spec's groups.

    The spec's bands are routed to Galileo's channel groups by name (R, G, B count as B04,
    B03, B02); groups the bands do not fill are masked (get no token).
    """

    def __init__(self, backbone: GalileoNano, spec: ModelSpec, *, patch_size: int,
                 month: int = MONTH) -> None:
        super().__init__(backbone, spec, dynamic_img_size=False)
        self.patch_size = int(patch_size)
        self.month = int(month)
        names = [RGB_TO_S2.get(b, b) for b in spec.bands]
        self.groups: dict[str, list[int]] = {}
        for group in S2_GROUPS:
            members = SPACE_TIME_GROUPS[group]
            if all(b in names for b in members):
                self.groups[group] = [names.index(b) for b in members]
            elif any(b in names for b in members):
                raise ValueError(f"{spec.name}: group {group} needs all of {members}; the spec "
                                 f"has only {[b for b in members if b in names]}")
        if not self.groups:
            raise ValueError(f"{spec.name}: bands {spec.bands} fill no Galileo S2 group")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        groups = {g: x[:, idx] for g, idx in self.groups.items()}
        tokens = self.backbone(groups, patch_size=self.patch_size, month=self.month)
        return tokens.mean(dim=1)  # every token is unmasked: average_tokens is the plain mean

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, patch_size={self.patch_size}, month={self.month}, "
                f"groups={list(self.groups)}")


def _check_patch(patch_size: object) -> int:
    if isinstance(patch_size, bool) or patch_size not in PATCH_SIZES:
        raise ValueError(f"patch_size must be one of {PATCH_SIZES}; got {patch_size!r}")
    return int(patch_size)


def _load(spec: ModelSpec, *, pretrained: bool, checkpoint, patch_size: int | None = None,
          rgb_gain: float | None = None) -> Encoder:
    patch_size = _check_patch(spec.patch_size if patch_size is None else patch_size)
    if rgb_gain is not None:
        if spec.units != "rgb01":
            raise ValueError(f"{spec.name}: rgb_gain= applies to the RGB mode only "
                             "(galileo-nano-rgb)")
        if isinstance(rgb_gain, bool) or not isinstance(rgb_gain, Real) or not rgb_gain > 0:
            raise ValueError(f"rgb_gain must be a positive number; got {rgb_gain!r}")
        mean, std = _rgb_stats(float(rgb_gain))
        spec = dataclasses.replace(spec, mean=mean, std=std, extra=tuple(
            (k, float(rgb_gain) if k == "rgb_gain" else v) for k, v in spec.extra))
    if patch_size != spec.patch_size:
        spec = dataclasses.replace(spec, patch_size=patch_size)
    path = resolve(spec.name, CHECKPOINT, checkpoint) if pretrained else None  # before building
    backbone = GalileoNano()
    if path is not None:
        state = read_state_dict(path)
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{spec.name}: checkpoint {path} is not a Galileo-nano "
                             f"encoder state dict: {err}") from err
    return GalileoEncoder(backbone, spec, patch_size=patch_size)


_CITATION = ("G. Tseng, A. Fuller, M. Reil, H. Herzog, P. Beukema, F. Bastani, J. R. Green, "
             "E. Shelhamer, H. Kerner, D. Rolnick. Galileo: Learning Global and Local Features "
             "of Many Remote Sensing Modalities. arXiv:2502.09356, 2025.")
_COMMON = dict(
    family="rs", architecture="Galileo-nano (ViT, D=128, depth 4, 8 heads, separate q/k/v)",
    input_size=64, patch_size=DEFAULT_PATCH_SIZE, embed_dim=128, feature="mean",
    pretraining="Galileo (latent + pixel masked modelling, global and local losses) on "
                "multimodal RS data (S1, S2, ERA5, SRTM, DW, WC, ...)",
    licence="MIT (nasaharvest/galileo LICENSE)", source=CHECKPOINT.url, citation=_CITATION,
)
_S2_MEAN, _S2_STD = _reflectance_stats(GALILEO_S2_BANDS)
_RGB_MEAN, _RGB_STD = _rgb_stats(RGB_GAIN)

_MS = ModelSpec(
    name="galileo-nano", bands=GALILEO_S2_BANDS, mean=_S2_MEAN, std=_S2_STD,
    units="reflectance", **_COMMON,
    notes=("slimlib's own Galileo implementation (slimlib.models.galileo) with the authors' "
           "published nano weights (encoder.pt, sha256 verified, strict keys). 13-band mode: "
           "the ten S2 bands of Galileo's groups, B01/B09/B10 dropped; S1, NDVI and non-S2 "
           "modalities masked. Normalisation (x-(m-2s))/(4s), authors' OURS S2 stats. "
           "Options: patch_size=4 (default) or 8."),
    extra=(("channel_groups", S2_GROUPS), ("masked_groups", ("S1", "NDVI", "space, time and "
            "static modalities")), ("month", MONTH), ("timesteps", 1),
           ("patch_sizes", PATCH_SIZES), ("eurosat_ms_index", EUROSAT_MS_INDEX),
           ("normalisation", "(x - (mean - 2 std)) / (4 std), OURS_S2 stats (DN)")),
)
_RGB = ModelSpec(
    name="galileo-nano-rgb", bands=("R", "G", "B"), mean=_RGB_MEAN, std=_RGB_STD,
    units="rgb01", **_COMMON,
    notes=("galileo-nano in RGB-only mode: only the S2_RGB group (B02, B03, B04 fed B, G, R) "
           "gets tokens, every other group is masked. rgb01 is read as reflectance "
           "rgb01 / RGB_GAIN (RGB_GAIN = 1/0.275), then normalised as galileo-nano. "
           "Options: patch_size=4 (default) or 8, rgb_gain=."),
    extra=(("channel_groups", ("S2_RGB",)), ("masked_groups", ("every group but S2_RGB",)),
           ("month", MONTH), ("timesteps", 1), ("patch_sizes", PATCH_SIZES),
           ("rgb_gain", RGB_GAIN),
           ("normalisation", "rgb01 / rgb_gain, then (x - (mean - 2 std)) / (4 std), "
                             "OURS_S2 stats (DN) of B04/B03/B02")),
)



def _p8(spec: ModelSpec) -> ModelSpec:
    """The same entry at patch size 8, under its own name (so a sweep can be given a name)."""
    return dataclasses.replace(spec, name=f"{spec.name}-p8", patch_size=8,
                               notes=spec.notes.replace("patch_size=4 (default) or 8",
                                                        "patch_size=8 (default) or 4"))


ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(_MS, partial(_load), CHECKPOINT, options=("patch_size",)),
    ModelEntry(_RGB, partial(_load), CHECKPOINT, options=("patch_size", "rgb_gain")),
    ModelEntry(_p8(_MS), partial(_load), CHECKPOINT, options=("patch_size",)),
    ModelEntry(_p8(_RGB), partial(_load), CHECKPOINT, options=("patch_size", "rgb_gain")),
)
