"""Remote-sensing foundation models built with torchgeo 0.8 (``torchgeo.models``).

Every builder is torchgeo's own, called with ``weights=None``; published weights are read
from disk by :mod:`slimlib.models.download` and loaded with the same key checks torchgeo makes,
so no torchgeo/torchvision download code (which has no timeout) ever runs. URLs are those of
the torchgeo 0.8.1 weight enums (``tests/models/test_models.py`` checks they still agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from slimlib.models import bands as B
from slimlib.models._utils import load_checked, subset_spec
from slimlib.models.download import Checkpoint, read_state_dict, resolve
from slimlib.models.encoder import (
    CopernicusFMEncoder,
    DOFAEncoder,
    Encoder,
    PanopticonEncoder,
    TimmViTEncoder,
)
from slimlib.models.entry import ModelEntry
from slimlib.specs import ModelSpec

__all__ = ["ENTRIES", "TORCHGEO_WEIGHTS"]

_TG = "torchgeo 0.8 "

#: registry name -> (torchgeo weights enum, member): the source of each URL below.
TORCHGEO_WEIGHTS: dict[str, tuple[str, str]] = {
    "ssl4eo-vits16-moco": ("ViTSmall16_Weights", "SENTINEL2_ALL_MOCO"),
    "ssl4eo-vits16-dino": ("ViTSmall16_Weights", "SENTINEL2_ALL_DINO"),
    "ssl4eo-vits16-mae": ("ViTSmall16_Weights", "SENTINEL2_ALL_MAE"),
    "ssl4eo-vits16-fgmae": ("ViTSmall16_Weights", "SENTINEL2_ALL_FGMAE"),
    "softcon-vits14": ("ViTSmall14_DINOv2_Weights", "SENTINEL2_ALL_SOFTCON"),
    "softcon-vitb14": ("ViTBase14_DINOv2_Weights", "SENTINEL2_ALL_SOFTCON"),
    "dofa-base": ("DOFABase16_Weights", "DOFA_MAE"),
    "dofa-large": ("DOFALarge16_Weights", "DOFA_MAE"),
    "panopticon-vitb14": ("Panopticon_Weights", "VIT_BASE14"),
    "copernicusfm-base": ("CopernicusFM_Base_Weights", "CopernicusFM_ViT"),
    "scalemae-large": ("ScaleMAELarge16_Weights", "FMOW_RGB"),
}

_URLS = {
    "ssl4eo-vits16-moco": "https://hf.co/torchgeo/vit_small_patch16_224_sentinel2_all_moco/resolve/1cb683f6c14739634cdfaaceb076529adf898c74/vit_small_patch16_224_sentinel2_all_moco-67c9032d.pth",
    "ssl4eo-vits16-dino": "https://hf.co/torchgeo/vit_small_patch16_224_sentinel2_all_dino/resolve/5b41dd418a79de47ac9f5be3e035405a83818a62/vit_small_patch16_224_sentinel2_all_dino-36bcc127.pth",
    "ssl4eo-vits16-mae": "https://huggingface.co/wangyi111/SSL4EO-S12/resolve/75c72195d35201dc1fb210818993518c25da566b/B13_vits16_mae_ep99_enc.pth",
    "ssl4eo-vits16-fgmae": "https://huggingface.co/wangyi111/FGMAE/resolve/24dd3077d7a99ecd454eaec7adb83d045d7fa122/B13_vits16_fgmae_ep99_enc.pth",
    "softcon-vits14": "https://huggingface.co/wangyi111/softcon/resolve/bae909781911f8ec034b4b959992fae17b973c0c/B13_vits14_softcon_enc.pth",
    "softcon-vitb14": "https://huggingface.co/wangyi111/softcon/resolve/bae909781911f8ec034b4b959992fae17b973c0c/B13_vitb14_softcon_enc.pth",
    "dofa-base": "https://hf.co/torchgeo/dofa/resolve/b8db318b64a90b9e085ec04ba8851233c5893666/dofa_base_patch16_224-a0275954.pth",
    "dofa-large": "https://hf.co/torchgeo/dofa/resolve/b8db318b64a90b9e085ec04ba8851233c5893666/dofa_large_patch16_224-0ff904d3.pth",
    "panopticon-vitb14": "https://hf.co/lewaldm/panopticon/resolve/c8c2bb9555819e8b2bcedf5b3b00e3bf531554e7/panopticon_vitb14_teacher.pth",
    "copernicusfm-base": "https://huggingface.co/torchgeo/copernicus-fm/resolve/f395812cc990ba25a451dbb9c9e6d95c8482947e/CopernicusFM_ViT_base_varlang-085350e4.pth",
    "scalemae-large": "https://hf.co/isaaccorley/vit_large_patch16_224_fmow_rgb_scalemae/resolve/9dc7f569424baeb780698352cf6e87638c882123/vit_large_patch16_224_fmow_rgb_scalemae-98ed9821.pth",
}

_S2 = B.S2_BANDS
_N = len(_S2)
#: keys torchgeo tolerates as missing/unexpected when loading its ViT weights (``KEYS``).
_VIT_KEYS = ("norm.weight", "norm.bias", "head.weight", "head.bias")
_POOLED_KEYS = ("fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias")


def _weights_path(spec: ModelSpec, ckpt: Checkpoint, pretrained: bool, checkpoint):
    """Resolve the checkpoint *before* building, so an offline failure is immediate."""
    return resolve(spec.name, ckpt, checkpoint) if pretrained else None


def _skip_init(path) -> dict:
    """timm's weight init is wasted work when a checkpoint overwrites every weight.

    Keys the checkpoint may lack (final norm, head) keep PyTorch's default module init,
    which for LayerNorm equals timm's (ones/zeros).
    """
    return {"weight_init": "skip"} if path is not None else {}


# --------------------------------------------------------------------------- timm ViTs
def _load_timm_vit(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
                   builder: str, extra: dict) -> Encoder:
    path = _weights_path(spec, ckpt, pretrained, checkpoint)
    import torchgeo.models as tgm

    model = getattr(tgm, builder)(None, in_chans=spec.in_chans, num_classes=0,
                                  dynamic_img_size=True, **_skip_init(path), **extra)
    if path is not None:
        load_checked(model, read_state_dict(path), name=spec.name, path=path,
                     allowed_missing=_VIT_KEYS, allowed_unexpected=_VIT_KEYS)
    return TimmViTEncoder(model, spec, dynamic_img_size=True)


def _ssl4eo(name: str, method: str, paper: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family="rs", architecture="ViT-S/16", bands=_S2,
        mean=(0.0,) * _N, std=(1.0,) * _N, units="reflectance", input_size=224, patch_size=16,
        embed_dim=384, feature="cls",
        pretraining=f"{method} on SSL4EO-S12 (Sentinel-2 L1C, 13 bands)",
        licence="CC-BY-4.0 (SSL4EO-S12 / FG-MAE weight releases)",
        source=_URLS[name],
        notes=(f"{_TG}vit_small_patch16_224 + ViTSmall16_Weights."
               f"{TORCHGEO_WEIGHTS[name][1]} ({paper}). Normalisation: DN / 10 000 "
               "(torchgeo _zhu_xlab_transforms: Resize 256, CenterCrop 224, divide by 10 000)."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_timm_vit, ckpt=ckpt, builder="vit_small_patch16_224",
                                    extra={}), ckpt)


def _softcon(name: str, arch: str, dim: int, builder: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family="rs", architecture=f"{arch} (DINOv2 ViT, LayerScale)", bands=_S2,
        mean=B.SSL4EO_S2_MEAN, std=B.SSL4EO_S2_STD, units="reflectance", input_size=224,
        patch_size=14, embed_dim=dim, feature="cls",
        pretraining="SoftCon (multi-label guided soft contrastive) on SSL4EO-S12 S2 L1C",
        licence="not stated in torchgeo metadata (see huggingface.co/wangyi111/softcon)",
        source=_URLS[name],
        notes=(f"{_TG}{builder} + {TORCHGEO_WEIGHTS[name][0]}.SENTINEL2_ALL_SOFTCON "
               "(arXiv 2405.20462). Normalisation: per-band SSL4EO-S12 mean/std "
               "(torchgeo _ssl4eo_s12_transforms_s2_stats). Copernicus-Bench instead rescales "
               "mean±2σ to [0, 1] with clipping for SoftCon."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_timm_vit, ckpt=ckpt, builder=builder,
                                    extra={"img_size": 224}), ckpt)


# ----------------------------------------------------------------------------- DOFA
def _load_dofa(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
               builder: str, bands: Sequence[str] | None = None) -> Encoder:
    spec = subset_spec(spec, bands)
    path = _weights_path(spec, ckpt, pretrained, checkpoint)
    import torchgeo.models as tgm

    model = getattr(tgm, builder)(None, num_classes=0)
    if path is not None:
        load_checked(model, read_state_dict(path), name=spec.name, path=path,
                     allowed_missing=_POOLED_KEYS, allowed_unexpected=("head.*",))
    return DOFAEncoder(model, spec)


def _dofa(name: str, arch: str, dim: int, builder: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family="rs", architecture=f"{arch} + wavelength-conditioned patch embed",
        bands=_S2, mean=B.SSL4EO_S2_MEAN, std=B.SSL4EO_S2_STD, units="reflectance",
        input_size=224, patch_size=16, embed_dim=dim, feature="mean",
        wavelengths_um=B.s2_wavelengths_um(_S2),
        pretraining="DOFA: MAE-style continual pretraining with a dynamic (wavelength) "
                    "hypernetwork patch embedding; multi-sensor data",
        licence="CC-BY-4.0 (earthflow/DOFA, torchgeo/dofa)",
        source=_URLS[name],
        notes=(f"{_TG}{builder} + {TORCHGEO_WEIGHTS[name][0]}.DOFA_MAE (arXiv 2403.15356). "
               "Fixed 224x224 input (position embedding is not interpolated). DOFA's "
               "normalisation is sensor-dependent; slimlib standardises S2 L1C with the "
               "SSL4EO-S12 per-band statistics. load(..., bands=[...]) selects a band subset."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_dofa, ckpt=ckpt, builder=builder), ckpt,
                      options=("bands",))


# ------------------------------------------------------------------------- Panopticon
def _load_panopticon(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
                     bands: Sequence[str] | None = None) -> Encoder:
    spec = subset_spec(spec, bands)
    path = _weights_path(spec, ckpt, pretrained, checkpoint)
    from torchgeo.models import panopticon_vitb14
    from torchgeo.models.copernicusfm import resize_abs_pos_embed

    model = panopticon_vitb14(None, img_size=spec.input_size)
    if path is not None:
        state = read_state_dict(path)
        state.pop("mask_token", None)
        target = model.model.pos_embed
        if "pos_embed" in state and state["pos_embed"].shape != target.shape:
            # the teacher checkpoint was trained at 518 px: 37x37 patches + CLS
            old = round((state["pos_embed"].shape[1] - 1) ** 0.5)
            state["pos_embed"] = resize_abs_pos_embed(
                state["pos_embed"], spec.input_size // spec.patch_size, old)
        load_checked(model.model, state, name=spec.name, path=path)
    return PanopticonEncoder(model, spec)


def _panopticon() -> ModelEntry:
    name = "panopticon-vitb14"
    spec = ModelSpec(
        name=name, family="rs",
        architecture="ViT-B/14 (DINOv2) + spectral cross-attention patch embed",
        bands=_S2, mean=B.SSL4EO_S2_MEAN, std=B.SSL4EO_S2_STD, units="reflectance",
        input_size=224, patch_size=14, embed_dim=768, feature="cls",
        wavelengths_um=B.s2_wavelengths_um(_S2),
        pretraining="Panopticon: DINOv2 self-distillation with spectral progressive "
                    "pretraining, any optical/SAR sensor",
        licence="not stated in torchgeo metadata (see github.com/Panopticon-FM/panopticon)",
        source=_URLS[name],
        notes=(f"{_TG}panopticon_vitb14(img_size=224) + Panopticon_Weights.VIT_BASE14 "
               "(arXiv 2503.10845); teacher weights, position embedding resized from 518 px. "
               "Channel ids = wavelengths in nm. The authors recommend 224 px and per-channel "
               "standardisation; slimlib uses the SSL4EO-S12 S2 statistics. "
               "load(..., bands=[...]) selects a band subset."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_panopticon, ckpt=ckpt), ckpt, options=("bands",))


# ---------------------------------------------------------------------- Copernicus-FM
def _load_copernicusfm(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
                       bands: Sequence[str] | None = None) -> Encoder:
    spec = subset_spec(spec, bands)
    path = _weights_path(spec, ckpt, pretrained, checkpoint)
    from torchgeo.models import copernicusfm_base

    model = copernicusfm_base(None, num_classes=0)
    if path is not None:
        load_checked(model, read_state_dict(path), name=spec.name, path=path,
                     allowed_missing=_POOLED_KEYS, allowed_unexpected=("head.*",))
    widths = tuple(B.S2_BANDWIDTHS_NM[b] for b in spec.bands)
    return CopernicusFMEncoder(model, spec, widths)


def _copernicusfm() -> ModelEntry:
    name = "copernicusfm-base"
    spec = ModelSpec(
        name=name, family="rs", architecture="ViT-B/16 + dynamic hypernetwork patch embed",
        bands=_S2, mean=B.COBENCH_EUROSAT_S2_MEAN, std=B.COBENCH_EUROSAT_S2_STD,
        units="reflectance", input_size=224, patch_size=16, embed_dim=768, feature="mean",
        wavelengths_um=B.s2_wavelengths_um(_S2),
        pretraining="Copernicus-FM: masked image modelling + continual distillation on "
                    "Copernicus-Pretrain (S1/S2/S3/S5P ...)",
        licence="Apache-2.0 (github.com/zhu-xlab/Copernicus-FM)",
        source=_URLS[name],
        notes=(f"{_TG}copernicusfm_base + CopernicusFM_Base_Weights.CopernicusFM_ViT "
               "(arXiv 2503.11849). Spectral mode with Copernicus-Bench S2 wavelengths and "
               "bandwidths (nm); location/time/area unknown (NaN -> learned tokens). "
               "Normalisation: Copernicus-Bench EuroSAT-S2 band statistics. Square inputs of "
               "any size (position embedding resized). load(..., bands=[...]) selects bands."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_copernicusfm, ckpt=ckpt), ckpt, options=("bands",))


# -------------------------------------------------------------------------- Scale-MAE
def _load_scalemae(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
                   res: float = 1.0) -> Encoder:
    if isinstance(res, bool) or not isinstance(res, int | float) or not res > 0:
        raise ValueError(f"{spec.name}: res (relative ground sample distance) must be > 0; "
                         f"got {res!r}")
    path = _weights_path(spec, ckpt, pretrained, checkpoint)
    from torchgeo.models import scalemae_large_patch16

    model = scalemae_large_patch16(None, num_classes=0, res=float(res), **_skip_init(path))
    if path is not None:
        # torchgeo loads this file with strict=False and no checks; slimlib requires every
        # block, patch-embed and norm weight and only tolerates head/pooling/decoder extras.
        load_checked(model, read_state_dict(path), name=spec.name, path=path,
                     allowed_missing=("pos_embed", "head.*", "fc_norm.*"),
                     warn_unexpected=True)
    return TimmViTEncoder(model, spec, dynamic_img_size=False)


def _scalemae() -> ModelEntry:
    name = "scalemae-large"
    spec = ModelSpec(
        name=name, family="rs", architecture="ViT-L/16 + GSD-aware sin-cos position embedding",
        bands=B.RGB_BANDS, mean=B.IMAGENET_MEAN, std=B.IMAGENET_STD, units="rgb01",
        input_size=224, patch_size=16, embed_dim=1024, feature="cls",
        pretraining="Scale-MAE (scale-aware masked autoencoder) on fMoW RGB",
        licence="not stated in torchgeo metadata (see github.com/bair-climate-initiative/"
                "scale-mae)",
        source=_URLS[name],
        notes=(f"{_TG}scalemae_large_patch16 + ScaleMAELarge16_Weights.FMOW_RGB "
               "(arXiv 2212.14532). Normalisation: /255 then ImageNet mean/std (torchgeo "
               "_scale_mae_transforms). Fixed 224x224 input. load(..., res=r) sets the relative "
               "GSD of the position embedding (default 1.0, as torchgeo and Scale-MAE's k-NN "
               "evaluation at 224 px)."),
    )
    ckpt = Checkpoint.from_url(_URLS[name])
    return ModelEntry(spec, partial(_load_scalemae, ckpt=ckpt), ckpt, options=("res",))


_MAKERS: tuple[Callable[[], ModelEntry], ...] = (
    partial(_ssl4eo, "ssl4eo-vits16-moco", "MoCo v3", "arXiv 2211.07044"),
    partial(_ssl4eo, "ssl4eo-vits16-dino", "DINO", "arXiv 2211.07044"),
    partial(_ssl4eo, "ssl4eo-vits16-mae", "MAE", "arXiv 2211.07044"),
    partial(_ssl4eo, "ssl4eo-vits16-fgmae", "FG-MAE (feature-guided MAE)", "arXiv 2310.18653"),
    partial(_softcon, "softcon-vits14", "ViT-S/14", 384, "vit_small_patch14_dinov2"),
    partial(_softcon, "softcon-vitb14", "ViT-B/14", 768, "vit_base_patch14_dinov2"),
    partial(_dofa, "dofa-base", "ViT-B/16", 768, "dofa_base_patch16_224"),
    partial(_dofa, "dofa-large", "ViT-L/16", 1024, "dofa_large_patch16_224"),
    _panopticon,
    _copernicusfm,
    _scalemae,
)

ENTRIES: tuple[ModelEntry, ...] = tuple(make() for make in _MAKERS)
