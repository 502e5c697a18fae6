"""TerraMind-1.0 and Prithvi-EO-2.0 through TerraTorch (optional extra ``slimlib[terratorch]``).

Backends (``load(name, backend=...)``):

``"terratorch"`` (default)
    TerraTorch's own backbone (``BACKBONE_REGISTRY.build``). Weights are resolved by
    :mod:`slimlib.models.download` first and passed as ``ckpt_path``, so TerraTorch never
    downloads. TerraMind's blocks are TerraTorch classes; they are converted, weight for
    weight, into timm ``Block``/``Attention``/``SwiGLU`` (verified numerically on every load)
    so :func:`slimlib.slim` can slim them. Prithvi already uses timm ``Block``.
``"timm-standin"`` (``pretrained=False`` only)
    A timm ``VisionTransformer`` with the same encoder architecture, for compute tables
    without TerraTorch: same blocks (widths, heads, FFN type, biases, norms), same patch grid
    and token count, hence the same FLOPs per width; fixed sin-cos position embeddings are
    buffers as in the originals. It cannot load the published weights.
"""

from __future__ import annotations

import importlib.util
import math
from functools import partial

import torch
from torch import nn

from slimlib.models import bands as B
from slimlib.models.download import Checkpoint, resolve
from slimlib.models.encoder import Encoder, PrithviEncoder, TerraMindEncoder, TimmViTEncoder
from slimlib.models.entry import ModelEntry
from slimlib.specs import ModelSpec

__all__ = ["ENTRIES", "BACKENDS", "terratorch_available", "to_timm_block", "build_standin"]

BACKENDS = ("terratorch", "timm-standin")
_EXTRA = "pip install 'slimlib[terratorch]'"


def terratorch_available() -> bool:
    return importlib.util.find_spec("terratorch") is not None


# ------------------------------------------------------------------- architectures
#: name -> (TerraTorch backbone, embed dim, depth, heads, patch, kind)
_ARCH = {
    "terramind-v1-base": ("terramind_v1_base", 768, 12, 12, 16, "terramind"),
    "terramind-v1-large": ("terramind_v1_large", 1024, 24, 16, 16, "terramind"),
    "prithvi-eo-2-300m": ("prithvi_eo_v2_300", 1024, 24, 16, 16, "prithvi"),
    "prithvi-eo-2-600m": ("prithvi_eo_v2_600", 1280, 32, 16, 14, "prithvi"),
}


def _sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, dim) [sin | cos] embedding with frequencies 1/10000^(2i/dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _prithvi_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """Prithvi's fixed 3D sin-cos embedding for one frame, with a zero CLS row: (1, 1+g², D).

    The width/height/time parts use 6/16, 6/16 and 4/16 of D (Prithvi-EO-2.0, TerraTorch
    ``get_3d_sincos_pos_embed``); tokens are ordered time, row, column.
    """
    d_w = d_h = dim // 16 * 6
    d_t = dim // 16 * 4
    ar = torch.arange(grid)
    w = _sincos_1d(d_w, ar).repeat(grid, 1)                 # column index varies fastest
    h = _sincos_1d(d_h, ar).repeat_interleave(grid, dim=0)  # row index
    t = _sincos_1d(d_t, torch.zeros(1)).repeat(grid * grid, 1)
    emb = torch.cat([w, h, t], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb]).float().unsqueeze(0)


def _sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """A fixed 2D sin-cos embedding (g², D) (MoCo v3 style, as TerraMind's image embeddings)."""
    ar = torch.arange(grid)
    gw, gh = torch.meshgrid(ar, ar, indexing="ij")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ow = gw.reshape(-1, 1).double() * omega
    oh = gh.reshape(-1, 1).double() * omega
    return torch.cat([ow.sin(), ow.cos(), oh.sin(), oh.cos()], dim=1).float().unsqueeze(0)


def _fix_pos_embed(model: nn.Module, value: torch.Tensor) -> None:
    """Replace timm's learned ``pos_embed`` parameter by a fixed buffer holding ``value``."""
    if tuple(model.pos_embed.shape) != tuple(value.shape):
        raise RuntimeError(f"pos_embed shape {tuple(model.pos_embed.shape)} != "
                           f"{tuple(value.shape)}")
    del model.pos_embed
    model.register_buffer("pos_embed", value.clone())


def build_standin(name: str) -> nn.Module:
    """A randomly initialised timm ``VisionTransformer`` with ``name``'s encoder architecture.

    * Prithvi-EO-2.0 300M/600M: ViT-L/16 (d=1024, 24 blocks, 16 heads) / ViT-H/14 (d=1280,
      32 blocks, 16 heads), MLP ratio 4 with GELU, qkv/proj/MLP biases, ``nn.LayerNorm``
      (eps 1e-5), CLS token, 6 input bands. Prithvi's 3D patch embedding with a one-frame
      (1, p, p) kernel is the same map as timm's 2D patch convolution.
    * TerraMind-1.0 base/large: d=768/1024, 12/24 blocks, 12/16 heads, no qkv/proj/MLP
      biases, LayerNorm eps 1e-6 without bias, SwiGLU FFN (SiLU) of hidden ``int(2*4d/3)``,
      no CLS token, 13 S2 L1C bands, patch projection without bias.
    """
    from timm.layers import SwiGLU
    from timm.models.vision_transformer import VisionTransformer

    tt_name, dim, depth, heads, patch, kind = _ARCH[name]
    grid = 224 // patch
    if kind == "prithvi":
        model = VisionTransformer(
            img_size=224, patch_size=patch, in_chans=len(B.PRITHVI_BANDS), num_classes=0,
            embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=4.0, qkv_bias=True,
            norm_layer=nn.LayerNorm, dynamic_img_size=True,
        )
        _fix_pos_embed(model, _prithvi_pos_embed(dim, grid))
        return model
    norm = partial(nn.LayerNorm, eps=1e-6, bias=False)
    model = VisionTransformer(
        img_size=224, patch_size=patch, in_chans=len(B.S2_BANDS), num_classes=0,
        global_pool="avg", fc_norm=False, class_token=False, embed_dim=dim, depth=depth,
        num_heads=heads, mlp_ratio=4.0, qkv_bias=False, proj_bias=False, norm_layer=norm,
        dynamic_img_size=True,
    )
    hidden = int(2 * int(dim * 4.0) / 3)
    for block in model.blocks:
        block.mlp = SwiGLU(dim, hidden_features=hidden, act_layer=nn.SiLU, bias=False)
    model.patch_embed.proj.bias = None
    _fix_pos_embed(model, _sincos_2d(dim, grid))
    return model


# ------------------------------------------------------------ TerraMind block conversion
def _has_bias(layer: nn.Module) -> bool:
    bias = getattr(layer, "bias", None)
    return isinstance(bias, nn.Parameter)


def _copy_linear(dst: nn.Linear, src: nn.Linear) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight)
        if dst.bias is not None:
            dst.bias.copy_(src.bias)


def _copy_norm(dst: nn.LayerNorm, src: nn.Module) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight)
        if dst.bias is not None:
            dst.bias.copy_(src.bias)


def to_timm_block(block: nn.Module, *, check: bool = True) -> nn.Module:
    """Rebuild a pre-norm ViT block with timm ``Block``/``Attention`` and ``Mlp``/``SwiGLU``.

    ``block`` must have ``norm1``/``norm2`` (LayerNorm-like with ``weight``, optional
    ``bias``, ``eps``), ``attn.qkv`` (fused), ``attn.proj``, ``attn.num_heads``,
    ``attn.scale == head_dim ** -0.5`` and ``mlp.fc1``/``mlp.fc2`` plus ``mlp.fc3`` for a
    gated FFN ``fc2(act(fc1(x)) * fc3(x))`` (TerraTorch's ``GatedMlp``), i.e. the TerraMind
    block. With ``check`` the new block is compared with the old one on random tokens.

    Raises:
        TypeError: the block has another structure (q/k norms, softmax1, unknown FFN).
        RuntimeError: the converted block does not reproduce the original.
    """
    from timm.layers import Mlp, SwiGLU
    from timm.models.vision_transformer import Block

    attn, mlp = getattr(block, "attn", None), getattr(block, "mlp", None)
    needed = [(attn, "qkv"), (attn, "proj"), (mlp, "fc1"), (mlp, "fc2"), (block, "norm1"),
              (block, "norm2")]
    if attn is None or mlp is None or any(not hasattr(o, a) for o, a in needed):
        raise TypeError(f"cannot convert {type(block).__qualname__}: expected norm1, "
                        "attn.qkv/proj, norm2 and mlp.fc1/fc2")
    if hasattr(attn, "q_norm") or getattr(attn, "allow_zero_attn", False):
        raise TypeError(f"cannot convert {type(attn).__qualname__}: q/k norms or softmax1")
    dim = attn.qkv.in_features
    heads = int(attn.num_heads)
    if attn.qkv.out_features != 3 * dim or not math.isclose(
            float(attn.scale), (dim // heads) ** -0.5, rel_tol=1e-6):
        raise TypeError("cannot convert: attention is not standard multi-head self-attention")
    gated = hasattr(mlp, "fc3")
    hidden = mlp.fc1.out_features
    act = type(getattr(mlp, "act", nn.GELU()))
    norm_bias = _has_bias(block.norm1)
    for norm in (block.norm1, block.norm2):
        extra = getattr(norm, "bias", None)
        if not _has_bias(norm) and isinstance(extra, torch.Tensor) and bool(extra.any()):
            raise TypeError("cannot convert: LayerNorm with a non-zero fixed bias")
    eps = float(getattr(block.norm1, "eps", 1e-6))
    new = Block(dim, heads, mlp_ratio=1.0, qkv_bias=_has_bias(attn.qkv),
                proj_bias=_has_bias(attn.proj), act_layer=act,
                norm_layer=partial(nn.LayerNorm, eps=eps, bias=norm_bias))
    # the FFN is set with its exact hidden width (a ratio could round down inside timm)
    mlp_bias = _has_bias(mlp.fc1)
    if gated:
        new.mlp = SwiGLU(dim, hidden_features=hidden, act_layer=act, bias=mlp_bias)
        _copy_linear(new.mlp.fc1_g, mlp.fc1)  # gate branch goes through the activation
        _copy_linear(new.mlp.fc1_x, mlp.fc3)
    else:
        new.mlp = Mlp(dim, hidden_features=hidden, act_layer=act, bias=mlp_bias)
        _copy_linear(new.mlp.fc1, mlp.fc1)
    _copy_linear(new.mlp.fc2, mlp.fc2)
    _copy_linear(new.attn.qkv, attn.qkv)
    _copy_linear(new.attn.proj, attn.proj)
    _copy_norm(new.norm1, block.norm1)
    _copy_norm(new.norm2, block.norm2)
    ref = next(block.parameters())
    new = new.to(device=ref.device, dtype=ref.dtype).train(block.training)
    if check:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 7, dim, generator=gen).to(device=ref.device, dtype=ref.dtype)
        was = block.training, new.training
        block.eval()
        new.eval()
        with torch.no_grad():
            want, got = block(x), new(x)
        block.train(was[0])
        new.train(was[1])
        if not torch.allclose(want, got, rtol=1e-4, atol=1e-5 * float(want.abs().max() + 1)):
            raise RuntimeError(f"converted block differs from {type(block).__qualname__} "
                               f"(max abs diff {float((want - got).abs().max()):.3g})")
    return new


# ------------------------------------------------------------------------- loaders
def _load(spec: ModelSpec, *, pretrained: bool, checkpoint, ckpt: Checkpoint,
          backend: str = "terratorch") -> Encoder:
    if backend not in BACKENDS:
        raise ValueError(f"{spec.name}: backend must be one of {BACKENDS}; got {backend!r}")
    if backend == "timm-standin":
        if pretrained:
            raise ValueError(
                f"{spec.name}: the timm stand-in has random weights only; use "
                f"pretrained=False, or backend='terratorch' ({_EXTRA}) for the published "
                "weights"
            )
        return TimmViTEncoder(build_standin(spec.name), spec, dynamic_img_size=True)
    if not terratorch_available():
        raise ImportError(
            f"{spec.name} needs TerraTorch, which is not installed: {_EXTRA}. Without it, "
            f"load({spec.name!r}, pretrained=False, backend='timm-standin') builds the same "
            "encoder architecture with random weights (for compute tables)."
        )
    path = resolve(spec.name, ckpt, checkpoint) if pretrained else None
    return _build_terratorch(spec, path)


def _build_terratorch(spec: ModelSpec, path) -> Encoder:  # pragma: no cover - needs terratorch
    from terratorch.registry import BACKBONE_REGISTRY

    tt_name, *_rest, kind = _ARCH[spec.name]
    kwargs = {"pretrained": False, "ckpt_path": str(path) if path is not None else None}
    if kind == "terramind":
        model = BACKBONE_REGISTRY.build(tt_name, modalities=["S2L1C"], **kwargs)
        for i, block in enumerate(model.encoder):
            model.encoder[i] = to_timm_block(block)
        return TerraMindEncoder(model, spec, dynamic_img_size=False)
    model = BACKBONE_REGISTRY.build(tt_name, num_frames=1, **kwargs)
    # TerraTorch sets an instance-level forward closure over the original model; a deep copy
    # (slimlib.slim) would keep calling the original, so drop it (forward_features is used).
    model.__dict__.pop("forward", None)
    return PrithviEncoder(model, spec, dynamic_img_size=False)


# ------------------------------------------------------------------------- entries
def _terramind(name: str, size: str, arch: str, dim: int, hf: str, file: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family="rs", architecture=f"{arch} (TerraMind encoder, SwiGLU FFN)",
        bands=B.S2_BANDS, mean=B.TERRAMIND_S2L1C_MEAN, std=B.TERRAMIND_S2L1C_STD,
        units="reflectance", input_size=224, patch_size=16, embed_dim=dim, feature="mean",
        pretraining="TerraMind: any-to-any multimodal masked token modelling on TerraMesh "
                    "(S1, S2 L1C/L2A, DEM, LULC, ...)",
        licence="Apache-2.0 (ibm-esa-geospatial model cards)",
        source=f"hf:{hf}/{file}", requires="terratorch",
        notes=(f"TerraTorch terramind_v1_{size} with the S2L1C modality (13 bands). "
               "Normalisation: TerraMind v1 S2L1C pretraining statistics. No CLS token: "
               "feature = mean of all output tokens after the encoder norm (TerraTorch's "
               "default pooling for classification). Blocks converted to timm (see docs)."),
    )
    ckpt = Checkpoint.from_hf(hf, file)
    return ModelEntry(spec, partial(_load, ckpt=ckpt), ckpt, options=("backend",))


def _prithvi(name: str, arch: str, dim: int, patch: int, hf: str, file: str) -> ModelEntry:
    spec = ModelSpec(
        name=name, family="rs", architecture=f"{arch} (3D patch embed, 1 frame)",
        bands=B.PRITHVI_BANDS, mean=B.PRITHVI_V2_MEAN, std=B.PRITHVI_V2_STD,
        units="reflectance", input_size=224, patch_size=patch, embed_dim=dim, feature="mean",
        pretraining="Prithvi-EO-2.0: MAE on NASA HLS V2 (30 m, 6 bands, 4.2M samples)",
        licence="Apache-2.0 (ibm-nasa-geospatial model cards)",
        source=f"hf:{hf}/{file}", requires="terratorch",
        notes=("TerraTorch " + _ARCH[name][0] + " with num_frames=1. HLS bands Blue, Green, "
               "Red, NIR-narrow, SWIR1, SWIR2 = Sentinel-2 B02, B03, B04, B8A, B11, B12. "
               "Normalisation: Prithvi-EO-2.0 statistics (HLS surface reflectance; slimlib's "
               "S2 data are L1C top-of-atmosphere). Feature = mean of the normalised patch "
               "tokens (CLS dropped), TerraTorch's pooling for classification."),
    )
    ckpt = Checkpoint.from_hf(hf, file)
    return ModelEntry(spec, partial(_load, ckpt=ckpt), ckpt, options=("backend",))


ENTRIES: tuple[ModelEntry, ...] = (
    _terramind("terramind-v1-base", "base", "ViT-B/16", 768,
               "ibm-esa-geospatial/TerraMind-1.0-base", "TerraMind_v1_base.pt"),
    _terramind("terramind-v1-large", "large", "ViT-L/16", 1024,
               "ibm-esa-geospatial/TerraMind-1.0-large", "TerraMind_v1_large.pt"),
    _prithvi("prithvi-eo-2-300m", "ViT-L/16", 1024, 16,
             "ibm-nasa-geospatial/Prithvi-EO-2.0-300M", "Prithvi_EO_V2_300M.pt"),
    _prithvi("prithvi-eo-2-600m", "ViT-H/14", 1280, 14,
             "ibm-nasa-geospatial/Prithvi-EO-2.0-600M", "Prithvi_EO_V2_600M.pt"),
)
