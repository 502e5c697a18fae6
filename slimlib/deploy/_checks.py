"""The checks :func:`slimlib.export` runs before a file is moved into place, and the metadata
an ONNX export carries: a seeded probe input, output comparison, the first modules that
differ between a model and its rebuild, and the onnxruntime run of a written graph.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimlib._validation import require

__all__ = ["onnx_metadata"]


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


def _probe(model: nn.Module, example_input: torch.Tensor | None) -> torch.Tensor:
    """A seeded random input of the example's shape (batch 2, so a dynamic batch is used)."""
    x = _example(model, example_input)
    if not x.is_floating_point():
        return x
    gen = torch.Generator().manual_seed(0)
    return torch.randn((2, *x.shape[1:]), generator=gen, dtype=x.dtype).to(x.device)


def _max_difference(reference: Any, output: Any) -> float | None:
    """``None`` when ``output`` matches ``reference`` (same shape, close), else the largest
    absolute difference (``inf`` for another shape or type)."""
    ref = torch.as_tensor(reference.detach().cpu() if isinstance(reference, torch.Tensor)
                          else reference).float()
    out = torch.as_tensor(output.detach().cpu() if isinstance(output, torch.Tensor)
                          else output).float()
    if ref.shape != out.shape:
        return math.inf
    size = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
    if torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * size):
        return None
    return float((out - ref).abs().max())


def _compare(reference: Any, output: Any, what: str, hint: str) -> None:
    if not isinstance(reference, torch.Tensor):
        return  # tuples/dicts: checked by the round-trip tests, not here
    diff = _max_difference(reference, output)
    if diff is not None:
        raise ValueError(f"export refused: {what} differs from the model (outputs differ by up "
                         f"to {diff:.3g} on a probe input); {hint}. Nothing was written")


def _differences(model: nn.Module, rebuilt: nn.Module, limit: int = 3) -> list[str]:
    """The first modules whose type or settings (``extra_repr``) differ."""
    theirs = dict(rebuilt.named_modules())
    found = []
    for name, mine in model.named_modules():
        other = theirs.get(name)
        if other is None:
            found.append(f"{name or 'the model'}: {type(mine).__name__} has no counterpart")
        elif type(mine) is not type(other) or mine.extra_repr() != other.extra_repr():
            found.append(f"{name}: {type(mine).__name__}({mine.extra_repr()}) here, "
                         f"{type(other).__name__}({other.extra_repr()}) rebuilt")
        if len(found) >= limit:
            break
    return found


def onnx_metadata(model: nn.Module) -> dict[str, str]:
    """What an ONNX export records in ``metadata_props``: ``model``, ``width`` (the cumulative
    width factor; JSON ``{"attn": …, "ffn": …}`` when the parts differ), ``align`` (the
    ``slim(..., align=)`` the kept dims were rounded up to, ``"none"`` for the paper's floor
    rule), ``bands``, ``units``, ``mean``, ``std`` (normalisation), ``input_size`` and
    ``slimlib_version``.

    Models without a slimlib spec (a bare ``nn.Module``) get ``"not recorded"`` for the input
    fields."""
    from slimlib import __version__
    from slimlib.slimming import slimmed_align, slimmed_widths

    spec = getattr(model, "spec", None)
    try:
        widths = slimmed_widths(model)
        width = f"{widths['attn']:g}" if widths["attn"] == widths["ffn"] else json.dumps(widths)
    except TypeError:
        width = "not slimmable (no transformer blocks)"
    align = slimmed_align(model)
    meta = {"model": getattr(spec, "name", None) or type(model).__name__, "width": width,
            "align": "none" if align is None else str(align), "slimlib_version": __version__}
    unknown = "not recorded (the model has no slimlib spec)"
    for key in ("bands", "units", "mean", "std", "input_size"):
        value = getattr(spec, key, None) if spec is not None else None
        meta[key] = unknown if value is None else (
            json.dumps(list(value)) if isinstance(value, tuple | list) else str(value))
    return meta


def _add_onnx_metadata(path: Path, meta: dict[str, str]) -> None:
    onnx = require("onnx", "deploy")

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, meta)
    onnx.save(proto, str(path))


def _check_onnx(path: Path, probe: torch.Tensor, reference: Any) -> None:
    """Run the written graph in ``onnxruntime`` (when installed) and compare."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    output = session.run(None, {session.get_inputs()[0].name: probe.cpu().numpy()})[0]
    _compare(reference, torch.from_numpy(output), "the ONNX graph (run in onnxruntime)",
             "some operation of the model is not exported faithfully; export to safetensors "
             "instead")
