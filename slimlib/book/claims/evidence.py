"""Collecting this build's evidence for the claims: the sweeps and tables each claim needs.

:func:`gather` runs (or reads back) the book's sweep plan (:mod:`slimlib.book.sweep_plan`: the
entries the owning chapters read) and returns an
:class:`slimlib.book.claims.statistics.Evidence`; :func:`order_rows` (the plan's ``orders``
entry, on :func:`ablation_model`'s pair) and :func:`parts_tables` are the ablation and
compute-floor tables it uses; :func:`is_real_rs` tells the authors' RS models from slimlib's
miniatures.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from slimlib.book.claims.statistics import Evidence
from slimlib.book.sweep_plan import ablation_model

__all__ = ["gather", "ablation_model", "order_rows", "parts_tables", "is_real_rs"]


def is_real_rs(models: Any) -> bool:
    """Whether every model named is a registered RS foundation model (family ``"rs"``),
    not one of slimlib's miniatures."""
    from slimlib import models as registry

    return all(registry.spec(m).family == "rs" for m in models)


def order_rows(profile: Any) -> pd.DataFrame:
    """The first/last/random ablation rows (k-NN, ablation widths): the sweep plan's
    ``orders`` entry, as chapter 7 draws it."""
    from slimlib.book import sweep_plan

    return sweep_plan.run(profile, "orders")


def parts_tables(profile: Any) -> dict[str, dict[str, pd.DataFrame]]:
    """Attention-only and FFN-only compute tables (paper's FLOP convention) per compute model
    and layer-type ablation model, at the profile's compute widths plus the paper's smallest width (where the floor is)."""
    from slimlib.book import compute_table_cached
    from slimlib.measure import WIDTHS

    widths = sorted(set(profile.compute_widths) | {min(WIDTHS), 1.0})
    return {m: {p: compute_table_cached(m, widths, parts=(p,),
                                        count_attention=False, count_norms=True,
                                        profile=profile)
                for p in ("attn", "ffn")}
            for m in dict.fromkeys((*profile.compute_models, *profile.layer_type_models))}


def gather(profile: Any) -> Evidence:
    """Run (or read back from the results table) every sweep the claims need: the entries of
    the book's sweep plan the owning chapters read, so the chapters then reuse these rows."""
    from slimlib.book import sweep_plan

    rs = sweep_plan.run(profile, "main")
    control_rows, floor, cmp = sweep_plan.run_controls(profile)
    pairs = tuple(tuple(p) for p in profile.slimmable_pairs)
    return Evidence(
        rs=rs[rs["protocol"] != "features"], features=rs[rs["protocol"] == "features"],
        cv_own=sweep_plan.run(profile, "cv_own"), cv_rs=sweep_plan.run(profile, "cv_rs"),
        controls=cmp, control_rows=control_rows, floor=floor,
        slimmable=sweep_plan.run(profile, "slimmable") if pairs else None, pairs=pairs,
        orders=order_rows(profile), parts=parts_tables(profile),
        real_rs=is_real_rs(profile.models),
        pretrained=bool(profile.pretrained), profile=profile)
