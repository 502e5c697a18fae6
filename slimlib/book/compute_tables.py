"""The book's FLOP tables: ``compute_table`` of a registry model at its native input, cached
as CSV under ``<results>/<profile>/compute/`` so every chapter reads the same numbers."""

from __future__ import annotations

import functools
from typing import Any

from slimlib import _io
from slimlib.measure import compute_table

__all__ = ["compute_table_cached"]




@functools.lru_cache(maxsize=2)
def _random_init(model_name: str, options: tuple = (), settings: Any = None):
    """``models.load(name, pretrained=False, **options)``, memoised: building a ViT-B takes
    seconds and FLOPs do not depend on the weights (``compute_table`` slims copies, never the
    model)."""
    from slimlib import models

    return models.load(model_name, pretrained=False, settings=settings,
                       **dict(options)).eval()


def compute_table_cached(model_name: str, widths: Any, *, parts: tuple[str, ...] = ("attn", "ffn"),
                         count_attention: bool = True, count_norms: bool = False,
                         profile: Any = None, settings: Any = None):
    """FLOPs/params per width of ``models.load(model_name, pretrained=False)`` at its native
    input (batch 1), cached as CSV under ``<results>/<profile>/compute/`` (atomic write).
    The profile's load options for the model (``profile.model_options``) apply; ``settings``
    (default: the profile's, :func:`slimlib.book.profiles.settings_of`) says where ``<results>`` is.

    ``count_attention=False, count_norms=True`` is the paper's (fvcore) convention."""
    import pandas as pd
    import torch

    from slimlib.book.profiles import Profile, results_path, settings_of

    if settings is None:
        settings = settings_of(profile if isinstance(profile, Profile) else None)
    widths = [float(w) for w in widths]
    options = tuple(sorted(profile.options_for(model_name).items())) \
        if profile is not None and hasattr(profile, "options_for") else ()
    key = _io.parameter_hash({"model": model_name, "widths": widths, "parts": list(parts),
                 "count_attention": count_attention,
                 **({"count_norms": True} if count_norms else {}),
                 **({"options": [list(o) for o in options]} if options else {})})
    path = results_path(f"compute/{model_name}-{key}.csv", profile, settings=settings)
    if path.is_file():
        return pd.read_csv(path)
    model = _random_init(model_name, options, settings)
    spec = model.spec
    x = torch.randn(1, len(spec.bands), spec.input_size, spec.input_size,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        table = compute_table(model, widths, x, parts=parts, count_attention=count_attention,
                              count_norms=count_norms)
    table.insert(0, "model", model_name)
    table["count_attention"] = count_attention
    table["count_norms"] = count_norms
    table["parts"] = "+".join(parts)
    with _io.atomic_path(path) as tmp:  # a unique temporary: two kernels may race here
        table.to_csv(tmp, index=False)
    return table


