"""Collecting this build's evidence for the claims: the sweeps and tables each claim needs.

:func:`gather` runs (or reads back) exactly the calls the owning chapters make and returns an
:class:`slimlib.book.claims.statistics.Evidence`; :func:`ablation_model`, :func:`order_rows` and
:func:`parts_tables` are the ablation and compute-floor tables it uses; :func:`is_real_rs`
tells the authors' RS models from slimlib's miniatures.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from slimlib.book.claims.statistics import Evidence

__all__ = ["gather", "ablation_model", "order_rows", "parts_tables", "is_real_rs"]


def is_real_rs(models: Any) -> bool:
    """Whether every model named is a registered RS foundation model (family ``"rs"``),
    not one of slimlib's miniatures."""
    from slimlib import models as registry

    return all(registry.spec(m).family == "rs" for m in models)


def ablation_model(profile: Any) -> tuple[str, str]:
    """The (model, dataset) the ablation chapter uses: of the profile's RS models and the
    datasets each can be fed, the pair with the most test images (the tightest intervals;
    earlier models and datasets win ties)."""
    from slimlib import models as registry
    from slimlib.book import runs_on
    from slimlib.book.profiles import load_datasets

    data = list(load_datasets(profile).values())
    best: tuple[int, str, str] | None = None
    for model in profile.models:
        spec = registry.spec(model)
        for train, test in data:
            if runs_on(spec, train) and (best is None or len(test) > best[0]):
                best = (len(test), model, train.name)
    if best is None:
        raise ValueError(f"none of {profile.models} fits the datasets {profile.datasets}")
    return best[1], best[2]


def order_rows(profile: Any) -> pd.DataFrame:
    """The first/last/random ablation rows (k-NN, ablation widths), as the ablation chapter
    draws them."""
    from slimlib.book import sweep_for

    model, dataset = ablation_model(profile)
    aw = sorted(set(profile.ablation_widths) | {1.0})
    return pd.concat([sweep_for(profile, [model], [dataset], widths=aw, protocols=["knn"],
                                order=order, metrics=False)
                      for order in ("first", "last", "random")], ignore_index=True)


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
    """Run (or read back from the results table) every sweep the claims need, with exactly
    the calls the owning chapters make, so the chapters then reuse these rows."""
    from slimlib.book import controls_for, sweep_for

    rs = sweep_for(profile, profile.models)
    control_rows, floor, cmp = controls_for(profile, profile.models)
    pairs = tuple(tuple(p) for p in profile.slimmable_pairs)
    names = list(dict.fromkeys(n for pair in pairs for n in pair))
    return Evidence(
        rs=rs[rs["protocol"] != "features"], features=rs[rs["protocol"] == "features"],
        cv_own=sweep_for(profile, profile.cv_models, profile.cv_datasets),
        cv_rs=sweep_for(profile, profile.cv_models), controls=cmp,
        control_rows=control_rows, floor=floor,
        slimmable=sweep_for(profile, names) if names else None, pairs=pairs,
        orders=order_rows(profile), parts=parts_tables(profile),
        real_rs=is_real_rs(profile.models),
        pretrained=bool(profile.pretrained), profile=profile)
