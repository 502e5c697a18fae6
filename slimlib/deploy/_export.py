"""Ship a slimmed model: safetensors (+ JSON config), ONNX or TorchScript.

* ``format="safetensors"``: one ``.safetensors`` file holding the weights and, in its header
  metadata, a JSON config (how to build the base architecture, the kept dims and softmax scale
  of every block, the cumulative width); the same JSON is written beside it as
  ``<name>.json``. No pickled Python classes: :func:`load_slimmed` rebuilds the architecture
  (timm / slimlib registry / ``module:function``) and loads the weights strictly.
* ``format="onnx"``: a graph with a dynamic batch axis that runs in ``onnxruntime`` without
  torch or slimlib; its metadata (``metadata_props``) records the model name, width, bands,
  units, normalisation, input size, alignment and slimlib version (:func:`onnx_metadata`).
* ``format="torchscript"``: ``torch.jit.trace`` of the model, reloadable with
  ``torch.jit.load`` without slimlib.

Every export is checked before the file is moved into place: the safetensors config is
rebuilt (:func:`load_slimmed`'s path) and the ONNX graph (with ``onnxruntime``, when
installed) and the TorchScript trace are run, each on a seeded probe input; when their output
differs from the model's, nothing is written and the error names what the file cannot record
(for timm models, the first module that differs, e.g. a non-default ``act_layer`` or
LayerNorm ``eps``: pass ``builder="module:function"``). :func:`load_slimmed` refuses a
``<name>.json`` sidecar that disagrees with the header and a truncated or corrupt file. Files
get the mode a plain ``open`` would (``0666 & ~umask``).

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
from slimlib.deploy._checks import (
    _add_onnx_metadata,
    _check_onnx,
    _compare,
    _differences,
    _example,
    _max_difference,
    _probe,
    onnx_metadata,
)

__all__ = ["export", "load_slimmed", "FORMATS", "SUFFIXES", "slimmed_config", "onnx_metadata"]

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
    from slimlib import __version__
    from slimlib.slimming import slimmed_align, slimmed_widths

    return {"format_version": _VERSION, "builder": _builder(model, builder), "blocks": blocks,
            "widths": slimmed_widths(model), "align": slimmed_align(model),
            "slimlib_version": __version__}


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
    from slimlib.slimming import find_blocks

    found = find_blocks(base)
    with warnings.catch_warnings():  # re-slimming a block is how the recorded dims are reached
        warnings.simplefilter("ignore", UserWarning)
        return _reshape_blocks(base, found, blocks)


def _reshape_blocks(base: nn.Module, found: list, blocks: list[dict[str, Any]]) -> nn.Module:
    from slimlib.slimming import ffn_hidden, slim

    if len(found) != len(blocks):
        raise ValueError(f"the rebuilt base has {len(found)} blocks, the config {len(blocks)}")
    for (name, block), want in zip(found, blocks, strict=True):
        # one part at a time, each at its exact kept/full ratio (slimmed_dim of it is the
        # kept count), so any recorded dims are reached, aligned ones included
        small, parts = block, []
        if want["attn_slimmed"]:
            parts.append("attn")
            small = slim(small, want["head_dim"] / int(block.attn.head_dim), parts=("attn",))
        if want["ffn_hidden"] != ffn_hidden(block.mlp):
            parts.append("ffn")
            small = slim(small, want["ffn_hidden"] / ffn_hidden(block.mlp), parts=("ffn",))
        if not parts:
            continue
        if "attn" in parts:
            small.attn.scale = float(want["scale"])
        parent, _, leaf = name.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, leaf, small)
    return base


def _rebuild(config: dict[str, Any], state: dict[str, torch.Tensor], where: str) -> nn.Module:
    """The model ``config`` describes, holding ``state`` (eval mode)."""
    from slimlib.slimming import ALIGN_ATTR, WIDTHS_ATTR

    model = _reshape(_build_base(config["builder"]), config["blocks"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(f"{where}: weights do not fit the rebuilt architecture: "
                         f"{' '.join(line.strip() for line in first[:3])}") from err
    if "widths" in config:
        setattr(model, WIDTHS_ATTR, {k: float(v) for k, v in config["widths"].items()})
    if config.get("align") is not None:  # files written before the option have no "align"
        setattr(model, ALIGN_ATTR, int(config["align"]))
    return model.eval()


def _unreadable(path: Path, err: BaseException) -> ValueError:
    lines = str(err).strip().splitlines()
    return ValueError(f"{path}: not a readable safetensors file ({path.stat().st_size} bytes; "
                      f"{type(err).__name__}: {lines[0] if lines else ''}); it is truncated or "
                      "corrupt: copy it again or export it again with slimlib.export")


def load_slimmed(path: str | os.PathLike) -> nn.Module:
    """Rebuild a model written by ``export(..., format="safetensors")`` (eval mode).

    The ``<name>.json`` sidecar, when present, must equal the config in the file's header
    (the header is what the weights were written with).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated or corrupt, holds no slimlib config, its sidecar
            differs from the header, or weights and architecture differ.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - SafetensorError and OS errors alike
        raise _unreadable(path, err) from None
    if _CONFIG_KEY not in meta:
        raise ValueError(f"{path} holds no {_CONFIG_KEY!r} metadata; was it written by "
                         "slimlib.export(..., format='safetensors')?")
    config = json.loads(meta[_CONFIG_KEY])
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            side = json.loads(sidecar.read_text())
        except (ValueError, OSError) as err:
            raise ValueError(f"{sidecar}: not readable JSON ({err}); delete it (the config is "
                             f"also in the header of {path.name})") from None
        if side != config:
            keys = sorted(k for k in set(side) | set(config) if side.get(k) != config.get(k))
            raise ValueError(f"{sidecar} differs from the config in the header of {path.name} "
                             f"(in {', '.join(keys)}): it describes another model than the "
                             "weights. Delete it or export the model again")
    return _rebuild(config, state, str(path))


# ============================================================================ export


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
        The written path. Files are written atomically (temporary file, then rename) with the
        mode a plain ``open`` gives.

    Raises:
        ValueError: the written file would not be this model (its output on a seeded probe
            input differs): the message names what the file cannot record and what to pass.
            Nothing is written then.
    """
    path = Path(path)
    format = _format_for(path, format)
    model = model.eval()
    probe = _probe(model, example_input)
    with torch.no_grad():  # also fills lazily computed constants before tracing
        reference = model(probe)
    with _io.atomic_path(path) as tmp:
        if format == "safetensors":
            from safetensors.torch import save_file

            config = slimmed_config(model, builder)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            _check_rebuilt(model, _jsonable(config), state, probe, reference)
            save_file(state, str(tmp), metadata={_CONFIG_KEY: json.dumps(config)})
            os.chmod(tmp, _io.default_mode())
            _io.atomic_write(path.with_suffix(".json"), json.dumps(config, indent=2))
        elif format == "onnx":
            x = _example(model, example_input)
            batch = torch.export.Dim("batch", min=1, max=4096)
            with torch.no_grad():
                program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                            input_names=["x"], output_names=["features"],
                                            dynamic_shapes=({0: batch},), verbose=False)
            program.save(str(tmp))
            _add_onnx_metadata(tmp, onnx_metadata(model))
            os.chmod(tmp, _io.default_mode())
            _check_onnx(tmp, probe, reference)
        else:
            x = _example(model, example_input)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(model, (x,), check_trace=False)
                _compare(reference, traced(probe), "the traced TorchScript module",
                         "the model's forward depends on Python control flow that tracing "
                         "cannot record; export to safetensors or ONNX instead")
                torch.jit.save(traced, str(tmp))
            os.chmod(tmp, _io.default_mode())
    return path


# ============================================================================ checks


def _check_rebuilt(model: nn.Module, config: dict[str, Any], state: dict[str, torch.Tensor],
                   probe: torch.Tensor, reference: Any) -> None:
    """Rebuild ``model`` from ``config`` as :func:`load_slimmed` will, and compare outputs."""
    b = config["builder"]
    recorded = f"{b.get('kind')} {b.get('name')!r}" + (f" with {b['kwargs']}"
                                                       if b.get("kwargs") else "")
    hint = ("the file records only " + recorded + ", not every construction argument of this "
            "model (e.g. a non-default timm act_layer, norm_layer or LayerNorm eps); pass "
            "builder='module:function' that builds this full-width model")
    try:
        rebuilt = _rebuild(config, {k: v.cpu() for k, v in state.items()}, "export")
    except (ValueError, TypeError, ImportError, AttributeError) as err:
        raise ValueError(f"export refused: the model cannot be rebuilt from what the file "
                         f"records ({recorded}): {err}; pass builder='module:function' that "
                         "builds this full-width model. Nothing was written") from None
    with torch.no_grad():
        output = rebuilt.to(probe.device)(probe)
    if isinstance(reference, torch.Tensor) and _max_difference(reference, output) is not None:
        where = _differences(model, rebuilt)
        if where:
            hint = f"first differences: {'; '.join(where)}. {hint[0].upper()}{hint[1:]}"
    _compare(reference, output, "the model rebuilt from what the file records", hint)
