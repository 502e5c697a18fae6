"""Ship a slimmed model: safetensors (+ JSON config), ONNX or TorchScript.

* ``format="safetensors"``: one ``.safetensors`` file holding the weights and, in its header
  metadata, a JSON config (how to build the base architecture, the kept dims and softmax scale
  of every block); the same JSON is written beside it as ``<name>.json``. No pickled Python
  classes: :func:`load_slimmed` rebuilds the architecture (timm / slimlib registry /
  ``module:function``) and loads the weights strictly.
* ``format="onnx"``: a graph with a dynamic batch axis that runs in ``onnxruntime`` without
  torch or slimlib.
* ``format="torchscript"``: ``torch.jit.trace`` of the model, reloadable with
  ``torch.jit.load`` without slimlib.

Shapes: every exported model maps ``(B, C, H, W) -> (B, D)`` (or what the module returns).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimlib import _io

__all__ = ["export", "load_slimmed", "FORMATS", "SUFFIXES", "slimmed_config"]

FORMATS = ("safetensors", "onnx", "torchscript")
_CONFIG_KEY = "slimlib_config"
_VERSION = 1


# ============================================================================ config


def _timm_builder(vit: nn.Module) -> dict[str, Any]:
    cfg = getattr(vit, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture")
    if not arch:
        raise ValueError("cannot tell which timm architecture this VisionTransformer is; pass "
                         "builder='timm_name' or builder='module:function'")
    pe = vit.patch_embed
    kwargs = {"num_classes": int(getattr(vit, "num_classes", 0)),
              "img_size": list(pe.img_size) if pe.img_size is not None else None,
              "in_chans": int(pe.proj.in_channels),
              "dynamic_img_size": bool(getattr(vit, "dynamic_img_size", False)),
              "global_pool": getattr(vit, "global_pool", "token")}
    builder = {"kind": "timm", "name": arch, "kwargs": kwargs}
    _check_same_architecture(vit, _build_base(builder), arch)
    return builder


def _check_same_architecture(model: nn.Module, base: nn.Module, arch: str) -> None:
    """Refuse to record a timm name whose default build differs from ``model``."""
    from slimlib.slimming import ffn_hidden, find_blocks

    mine, theirs = find_blocks(model), find_blocks(base)
    same = len(mine) == len(theirs) and all(
        a.attn.qkv.in_features == b.attn.qkv.in_features
        and a.attn.num_heads == b.attn.num_heads
        and getattr(a.attn, "full_head_dim", a.attn.head_dim) == b.attn.head_dim
        and ffn_hidden(a.mlp) <= ffn_hidden(b.mlp)
        for (_, a), (_, b) in zip(mine, theirs, strict=False))
    if not same:
        raise ValueError(f"this model is not timm's default {arch!r} (depth, width or heads "
                         "differ), so its name cannot rebuild it; pass builder='module:function'"
                         " that builds the full-width model")


def _builder(model: nn.Module, builder: str | dict | None) -> dict[str, Any]:
    from slimlib.models.encoder import Encoder, TimmViTEncoder

    if isinstance(builder, dict):
        return builder
    spec = getattr(model, "spec", None)
    wrap = None
    if isinstance(model, Encoder):
        wrap = {"class": type(model).__name__, "spec": dataclasses.asdict(spec),
                "dynamic_img_size": bool(model.dynamic_img_size)}
    if isinstance(builder, str):
        kind = "function" if ":" in builder else "timm"
        return {"kind": kind, "name": builder, "kwargs": {}, "wrap": wrap}
    if spec is not None and isinstance(model, Encoder):
        from slimlib import models as _models

        if spec.name in _models.list_models():
            options = {k: list(v) if isinstance(v, tuple) else v
                       for k, v in getattr(model, "load_options", {}).items()}
            return {"kind": "registry", "name": spec.name, "kwargs": options,
                    "spec": _jsonable(dataclasses.asdict(spec))}
        if isinstance(model, TimmViTEncoder):
            return {**_timm_builder(model.backbone), "wrap": wrap}
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        return {**_timm_builder(model), "wrap": None}
    raise ValueError(f"cannot record how to build a {type(model).__name__}: pass builder= "
                     "(a timm name or 'module:function' that builds the full-width model)")


def slimmed_config(model: nn.Module, builder: str | dict | None = None) -> dict[str, Any]:
    """The JSON config :func:`load_slimmed` needs: the base builder and per-block dims."""
    from slimlib.slimming import SlimAttention, ffn_hidden, find_blocks

    blocks = []
    for name, block in find_blocks(model):
        attn = block.attn
        blocks.append({"name": name, "attn_slimmed": isinstance(attn, SlimAttention),
                       "head_dim": int(attn.head_dim),
                       "full_head_dim": int(getattr(attn, "full_head_dim", attn.head_dim)),
                       "scale": float(attn.scale), "ffn_hidden": ffn_hidden(block.mlp)})
    return {"format_version": _VERSION, "builder": _builder(model, builder), "blocks": blocks}


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


# ============================================================================ rebuild


def _build_base(builder: dict[str, Any]) -> nn.Module:
    kind = builder.get("kind")
    if kind == "registry":
        from slimlib import models as _models

        kwargs = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in builder.get("kwargs", {}).items()}
        base = _models.load(builder["name"], pretrained=False, **kwargs)
        recorded = builder.get("spec")
        if recorded is not None and _jsonable(dataclasses.asdict(base.spec)) != recorded:
            raise ValueError(f"the rebuilt {builder['name']!r} differs from the exported one "
                             f"(model spec changed; options {kwargs}): re-export it with this "
                             "slimlib version")
        return base.eval()
    if kind == "timm":
        import timm

        kwargs = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in builder.get("kwargs", {}).items() if v is not None}
        base = timm.create_model(builder["name"], pretrained=False, **kwargs)
    elif kind == "function":
        module_name, _, func = builder["name"].partition(":")
        base = getattr(importlib.import_module(module_name), func)()
    else:
        raise ValueError(f"unknown builder kind {kind!r} in the config")
    wrap = builder.get("wrap")
    if wrap:
        from slimlib.models import encoder as _enc
        from slimlib.specs import ModelSpec

        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in wrap["spec"].items()}
        cls = getattr(_enc, wrap["class"])
        base = cls(base, ModelSpec(**fields), dynamic_img_size=wrap["dynamic_img_size"])
    return base.eval()


def _reshape(base: nn.Module, blocks: list[dict[str, Any]]) -> nn.Module:
    """Slim every block of ``base`` to the recorded dims (weights are loaded afterwards)."""
    from slimlib.slimming import ffn_hidden, find_blocks, slim

    found = find_blocks(base)
    if len(found) != len(blocks):
        raise ValueError(f"the rebuilt base has {len(found)} blocks, the config {len(blocks)}")
    for (name, block), want in zip(found, blocks, strict=True):
        parts = []
        widths = []
        if want["attn_slimmed"]:
            parts.append("attn")
            widths.append(want["head_dim"] / int(block.attn.head_dim))
        if want["ffn_hidden"] != ffn_hidden(block.mlp):
            parts.append("ffn")
            widths.append(want["ffn_hidden"] / ffn_hidden(block.mlp))
        if not parts:
            continue
        small = slim(block, min(1.0, max(widths)), parts=tuple(parts))
        if "attn" in parts and small.attn.head_dim != want["head_dim"]:
            small = slim(block, want["head_dim"] / int(block.attn.head_dim), parts=("attn",))
            small = slim(small, want["ffn_hidden"] / ffn_hidden(block.mlp), parts=("ffn",)) \
                if "ffn" in parts else small
        if "attn" in parts:
            small.attn.scale = float(want["scale"])
        parent, _, leaf = name.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, leaf, small)
    return base


def load_slimmed(path: str | os.PathLike) -> nn.Module:
    """Rebuild a model written by ``export(..., format="safetensors")`` (eval mode).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no slimlib config, or weights and architecture differ.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if _CONFIG_KEY not in meta:
        raise ValueError(f"{path} holds no {_CONFIG_KEY!r} metadata; was it written by "
                         "slimlib.export(..., format='safetensors')?")
    config = json.loads(meta[_CONFIG_KEY])
    model = _reshape(_build_base(config["builder"]), config["blocks"])
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the rebuilt architecture: {err}") from err
    return model.eval()


# ============================================================================ export


def _example(model: nn.Module, example_input: torch.Tensor | None) -> torch.Tensor:
    if example_input is not None:
        return example_input
    spec = getattr(model, "spec", None)
    if spec is not None:
        return torch.zeros(1, spec.in_chans, spec.input_size, spec.input_size)
    pe = getattr(model, "patch_embed", None)
    if pe is not None and pe.img_size is not None:
        return torch.zeros(1, int(pe.proj.in_channels), *map(int, pe.img_size))
    raise ValueError("pass example_input= (a (1, C, H, W) tensor) for this model")


#: The file suffix each format is written under (``format=None`` infers it from this).
SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript",
            ".ts": "torchscript"}


def _format_for(path: Path, format: str | None) -> str:
    from slimlib._validation import check_choice

    implied = SUFFIXES.get(path.suffix.lower())
    if format is None:
        if implied is None:
            raise ValueError(f"cannot tell the format from {path.name!r}: pass format= "
                             f"({', '.join(FORMATS)}) or use a suffix in {sorted(SUFFIXES)}")
        return implied
    format = check_choice(format, FORMATS, "format")
    if implied is not None and implied != format:
        raise ValueError(f"{path.name!r} looks like {implied}, but format={format!r}: use a "
                         f"matching suffix (a {format} file read as {implied} fails to load)")
    return format


def export(model: nn.Module, path: str | os.PathLike, *, format: str | None = None,
           example_input: torch.Tensor | None = None, builder: str | dict | None = None,
           opset: int = 18) -> Path:
    """Write ``model`` (typically ``slimlib.slim(...)``'s result) to ``path``.

    Args:
        model: the (slimmed) model, in eval mode for inference.
        path: output file (``.safetensors``, ``.onnx`` or ``.pt``).
        format: ``"safetensors"``, ``"onnx"`` or ``"torchscript"``; ``None`` (default): from
            the suffix (``.safetensors``, ``.onnx``, ``.pt``/``.ts``). A suffix that names
            another format is an error.
        example_input: an input ``(1, C, H, W)`` for tracing (default: from ``model.spec`` or
            the patch embedding's image size). The batch axis is dynamic in ONNX.
        builder: for safetensors, how to build the full-width model (a timm name or
            ``"module:function"``); inferred for timm ViTs and slimlib encoders.
        opset: ONNX opset.

    Returns:
        The written path. Files are written atomically (temporary file, then rename).
    """
    path = Path(path)
    format = _format_for(path, format)
    model = model.eval()
    with _io.atomic_path(path) as tmp:
        if format == "safetensors":
            from safetensors.torch import save_file

            config = slimmed_config(model, builder)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp), metadata={_CONFIG_KEY: json.dumps(config)})
            _io.atomic_write(path.with_suffix(".json"), json.dumps(config, indent=2))
        elif format == "onnx":
            x = _example(model, example_input)
            batch = torch.export.Dim("batch", min=1, max=4096)
            with torch.no_grad():
                program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                            input_names=["x"], output_names=["features"],
                                            dynamic_shapes=({0: batch},), verbose=False)
            program.save(str(tmp))
        else:
            x = _example(model, example_input)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(model, (x,), check_trace=False)
                torch.jit.save(traced, str(tmp))
    return path
