"""Computer-vision baselines from timm: ImageNet MAE ViT-B/16 and DINOv2 ViT-B/14.

Weights are the timm Hugging Face releases (``timm/<model>.<tag>``, ``model.safetensors``);
a local file is handed to timm through ``pretrained_cfg_overlay={"file": path}``, so timm's own
checkpoint filter (e.g. DINOv2's position-embedding resampling 518 -> 224 px) still applies
and loading stays strict.
"""

from __future__ import annotations

from functools import partial

from slimlib.models import bands as B
from slimlib.models.download import Checkpoint, resolve
from slimlib.models.encoder import Encoder, TimmViTEncoder
from slimlib.models.entry import ModelEntry
from slimlib.specs import ModelSpec

__all__ = ["ENTRIES"]


def _load_timm(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
               timm_name: str, extra: dict) -> Encoder:
    path = resolve(spec.name, ckpt, checkpoint) if pretrained else None
    import timm

    kwargs = dict(num_classes=0, dynamic_img_size=True, **extra)
    if path is not None:
        try:
            model = timm.create_model(timm_name, pretrained=True, weight_init="skip",
                                      pretrained_cfg_overlay={"file": str(path)}, **kwargs)
        except (RuntimeError, KeyError) as err:  # wrong keys/shapes in the file
            raise ValueError(f"{spec.name}: checkpoint {path} does not fit timm "
                             f"{timm_name}: {err}") from err
    else:
        model = timm.create_model(timm_name, pretrained=False, **kwargs)
    return TimmViTEncoder(model, spec, dynamic_img_size=True)


def _entry(spec: ModelSpec, timm_name: str, extra: dict) -> ModelEntry:
    ckpt = Checkpoint.from_hf(f"timm/{timm_name}", "model.safetensors",
                              local_name=f"{timm_name}.safetensors")
    return ModelEntry(spec, partial(_load_timm, ckpt=ckpt, timm_name=timm_name, extra=extra),
                      ckpt)


_MAE = ModelSpec(
    name="mae-vitb16-imagenet", family="cv", architecture="ViT-B/16", bands=B.RGB_BANDS,
    mean=B.IMAGENET_MEAN, std=B.IMAGENET_STD, units="rgb01", input_size=224, patch_size=16,
    embed_dim=768, feature="cls", pretraining="MAE on ImageNet-1k (He et al. 2022)",
    licence="CC-BY-NC-4.0 (timm pretrained_cfg)",
    source="hf-hub:timm/vit_base_patch16_224.mae",
    notes="timm vit_base_patch16_224.mae (original: dl.fbaipublicfiles.com/mae/pretrain/"
          "mae_pretrain_vit_base.pth). Feature: normalised CLS token, as MAE's linear probe.",
)

_DINOV2 = ModelSpec(
    name="dinov2-vitb14", family="cv", architecture="ViT-B/14 (LayerScale)", bands=B.RGB_BANDS,
    mean=B.IMAGENET_MEAN, std=B.IMAGENET_STD, units="rgb01", input_size=224, patch_size=14,
    embed_dim=768, feature="cls", pretraining="DINOv2 on LVD-142M (Oquab et al. 2023)",
    licence="Apache-2.0 (timm pretrained_cfg)",
    source="hf-hub:timm/vit_base_patch14_dinov2.lvd142m",
    notes="timm vit_base_patch14_dinov2.lvd142m built at img_size=224 (16x16 patches; timm "
          "resamples the 518-px position embedding on load). 224 px keeps the token count and "
          "compute comparable with the RS models (all fed 224 px) and matches DINOv2's own "
          "linear/k-NN evaluation resolution; the native 518 px costs 6.5x the FLOPs "
          "(303 vs 46 GFLOPs by slimlib.measure.flops). Feature: normalised CLS token, as "
          "DINOv2's k-NN evaluation.",
)

ENTRIES: tuple[ModelEntry, ...] = (
    _entry(_MAE, "vit_base_patch16_224.mae", {}),
    _entry(_DINOV2, "vit_base_patch14_dinov2.lvd142m", {"img_size": 224}),
)
