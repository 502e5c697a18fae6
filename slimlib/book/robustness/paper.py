"""The paper's side of chapter 10's comparisons: its rebuttal statistic per model and width
(:func:`paper_effect`, computed from the packaged reference data) and its range over models
at this build's width (:func:`paper_band`; ``None`` where the paper has no such width)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from slimlib.book.robustness import analyses as rb

__all__ = ["paper_effect", "paper_band", "paper_retention"]


def paper_band(values: pd.DataFrame, width: float, *, what: str
                ) -> tuple[tuple[float, float] | None, str | None]:
    """The paper's range over its models of the statistic ``values`` (index: series, columns:
    the paper's widths s) at this build's ``width``, or ``(None, why)`` when the paper did not
    report that width (a comparison at another width would not be like with like)."""
    col = rb.paper_at_width(values, width)
    if col is None or col.dropna().empty:
        widths = ", ".join(f"{float(c):g}" for c in values.columns)
        return None, (f"the paper reports {what} at s ∈ {{{widths}}}, not at this build's "
                      f"s = {width:g}: no like-with-like comparison")
    col = col.dropna()
    return (float(col.min()), float(col.max())), None


def paper_retention(section: str, key: str, col: str = "y") -> pd.DataFrame:
    """Paper rows of a rebuttal section with ``key`` parsed from ``extra`` and retention
    y / y(s = 1) per series and key value."""
    ref = rb.paper_rebuttal(section)
    ref[key] = ref["extra"].str.extract(rf"{key}=([^;]+)")[0]
    full = ref[np.isclose(ref["s"], 1.0)].set_index(["series", key])[col]
    ref["retention"] = ref[col] / ref.set_index(["series", key]).index.map(full).to_numpy()
    return ref


def paper_effect(section: str, *, ratio: float | None = None) -> tuple[pd.DataFrame, str]:
    """The paper's statistic of one rebuttal section, per model (rows) and width ``s``
    (columns), with a note on what was left out: ``(effects, note)``.

    * ``"imbalance"``: retention at ratio ``ratio`` minus balanced (m-eurosat); empty with a
      note when the paper has no such ratio;
    * ``"classwise"``: AP retention of the hardest minus the easiest class (m-bigearthnet);
      a model whose hardest class is at chance level at full width
      (:func:`slimlib.book.robustness.analyses.at_chance`, the same rule as for this build's classes) is
      left out (listed in ``effects.attrs["left_out"]``);
    * ``"geo"``: retention on the Cultural-10 split minus the random split (m-so2sat);
    * ``"finetune"``: retention fine-tuned minus linear probe (m-eurosat).
    """
    if section == "imbalance":
        ref = paper_retention("imbalance", "imbalance_ratio")
        keys = {float(k): k for k in ref["imbalance_ratio"].unique()}
        if ratio is None or float(ratio) not in keys or 1.0 not in keys:
            return pd.DataFrame(), (f"the paper reports ratios {sorted(keys)}, not this "
                                    f"build's {ratio}: no like-with-like comparison")
        piv = ref.pivot_table(index="series", columns=["imbalance_ratio", "s"],
                              values="retention")
        return piv[keys[float(ratio)]] - piv[keys[1.0]], ""
    if section == "classwise":
        ref = paper_retention("classwise", "class_rank")
        full_ap = ref[np.isclose(ref["s"], 1.0) & (ref["class_rank"] == "hardest")
                      ].set_index("series")["y"]
        dropped = sorted(m for m, ap in full_ap.items() if rb.at_chance(float(ap)))
        kept = ref[~ref["series"].isin(dropped)]
        note = ("the paper's " + ", ".join(f"{m} (hardest class AP {full_ap[m]:.2f} at full "
                                           "width)" for m in dropped)
                + " left out by the same chance-level rule") if dropped else ""
        if kept.empty:
            out = pd.DataFrame()
        else:
            piv = kept.pivot_table(index="series", columns=["class_rank", "s"],
                                   values="retention")
            out = piv["hardest"] - piv["easiest"]
        out.attrs["left_out"] = dropped
        return out, note
    if section == "geo":
        ref = paper_retention("geo", "split")
        piv = ref.pivot_table(index="series", columns=["split", "s"], values="retention")
        return piv["Cultural-10"] - piv["random"], ""
    if section == "finetune":
        ref = rb.paper_rebuttal("finetune")
        ref = ref[ref["dataset"] == "m-eurosat"]
        piv = ref.pivot_table(index=["series", "protocol"], columns="s", values="y")
        ret = piv.div(piv[1.0], axis=0)
        return ret.xs("finetune", level="protocol") - ret.xs("linear", level="protocol"), ""
    raise ValueError(f"unknown rebuttal section {section!r}; use imbalance, classwise, geo or "
                     "finetune")
