"""Which blocks tolerate narrowing, and what slimming actually did (issue 25, item 2).

* :func:`slim_block` — a copy of a model with **one** block slimmed (its attention, its FFN
  or both) and every other block at full width. It is :func:`slimlib.slimming.slim` applied
  to that block alone (the same rule, kept dims, softmax scale and hook handling), swapped
  into a copy of the model.
* :func:`block_sensitivity` — per block × part (attention, FFN) × width: the test score of
  the model with only that part of that block slimmed, scored with the k-NN probe
  :func:`slimlib.diagnose` uses on the same train/test images, and its **drop** against the
  full model (full − variant; > 0 is worse) with a 95 % paired bootstrap interval over the
  test images (:func:`slimlib.sweeping.intervals.bootstrap`: every variant is drawn on the
  same resampled images as the full model).
* :func:`verify_slimming` — what slimming does at one width: per block the kept dims (Q/K/V
  per head, FFN hidden), the real weight shapes of the Linear layers it cut, parameters
  before/after, and every module it left alone with the reason.
* :func:`sensitivity_section` bundles both for :func:`slimlib.diagnose`'s report;
  :func:`sensitivity_markdown`, :func:`sensitivity_html` and :func:`sensitivity_png` render it.

Cost: every variant extracts train and test features once (depth × parts × widths
variants, plus the full model, which :func:`slimlib.sweep` has usually cached already); the
inputs are prepared once, variants with identical kept dims share features, and every
feature set goes through the feature cache, so a rerun only probes.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from slimlib import features as _features
from slimlib._validation import check_parts, check_widths
from slimlib.constants import PARTS

__all__ = ["SENSITIVITY_WIDTHS", "slim_block", "block_sensitivity", "Verification",
           "verify_slimming", "sensitivity_section", "sensitivity_markdown", "sensitivity_html",
           "sensitivity_png"]

#: Widths of a per-block sensitivity analysis (and of ``diagnose(sensitivity=True)``).
SENSITIVITY_WIDTHS: tuple[float, ...] = (0.5, 0.25, 0.1)
#: ``part`` of the reference row of :func:`block_sensitivity` (the unslimmed model).
FULL = "full"


def _block_index(blocks: list[tuple[str, nn.Module]], block: int | str) -> int:
    names = [n for n, _ in blocks]
    if isinstance(block, str):
        if block not in names:
            raise ValueError(f"no transformer block named {block!r}; blocks: {names}")
        return names.index(block)
    if isinstance(block, bool) or not isinstance(block, int) or not -len(names) <= block < len(names):
        raise ValueError(f"block must be a block name or an index in [0, {len(names)}); "
                         f"got {block!r}")
    return block % len(names)


def slim_block(model: nn.Module, block: int | str, width: float, *,
               parts: Sequence[str] = PARTS, scale: str = "slimmed") -> nn.Module:
    """A copy of ``model`` in which only ``block`` is slimmed to ``width``.

    Args:
        model: a ViT encoder (left untouched).
        block: index into :func:`slimlib.slimming.find_blocks` or the block's module name.
        width: width factor s in (0, 1].
        parts: which sub-layers of that block to slim: ``("attn", "ffn")``, ``("attn",)``
            or ``("ffn",)``.
        scale: softmax scale rule, as in :func:`slimlib.slim`.

    Returns:
        A new model: the chosen block is ``slimlib.slim(block, width, parts=parts)`` (same
        kept dims, scale and hook handling as slimming the whole model), every other module is
        a deep copy of the original. Its widths differ per block, so
        :func:`slimlib.slimming.slimmed_widths` does not describe it; the slimmed block itself
        records its widths.

    Raises:
        ValueError: unknown block, bad width or parts.
        TypeError: the chosen part of that block is of a type slimlib cannot slim.
    """
    from slimlib.slimming import find_blocks, slim

    blocks = find_blocks(model)
    name, source = blocks[_block_index(blocks, block)]
    slimmed = slim(source, width, parts=parts, scale=scale)
    # share the replaced block in the copy instead of copying it, then swap it out
    new = copy.deepcopy(model, memo={id(source): source})
    parent_name, _, attr = name.rpartition(".")
    parent = new.get_submodule(parent_name) if parent_name else new
    if not attr:
        raise ValueError("the model is itself one block; slim it with slimlib.slim")
    setattr(parent, attr, slimmed)
    return new


def _kept(block: nn.Module, part: str) -> int:
    """Per-head Q/K/V dims (``part="attn"``) or FFN hidden units (``"ffn"``) of a block."""
    from slimlib.slimming import attention_layout, ffn_hidden

    return attention_layout(block.attn).head_dim if part == "attn" else ffn_hidden(block.mlp)


class _Features:
    """Train/test features of model variants on one dataset, inputs prepared once and every
    set cached under the key :func:`slimlib.sweep` uses (so the full model's are reused)."""

    def __init__(self, model: nn.Module, train: Any, test: Any, *, name: str | None,
                 data_name: str | None, batch_size: int, device: torch.device, cache: bool,
                 settings: Any) -> None:
        from slimlib.specs import ImageDataset

        self.model, self.name, self.batch_size, self.device = model, name, batch_size, device
        self.cache, self.settings = cache, settings
        spec = getattr(model, "spec", None)
        self.splits: dict[str, tuple[Any, Any]] = {}
        for split, ds in (("train", train), ("test", test)):
            key = None
            if isinstance(ds, ImageDataset):
                if spec is None:
                    raise ValueError("image datasets need model.spec (a ModelSpec); pass "
                                     "prepared (x, y) pairs instead")
                key = dict(dataset=data_name or "data", split=split,
                           data=_features.data_fingerprint(ds),
                           preprocessing=_features.preprocessing_id(spec),
                           precision=_features.precision(device))
                if _features.prepared_gib(ds, spec) <= _features.MAX_PREPARED_GIB:
                    ds = (_features.prepare_dataset(ds, spec), ds.labels)
            self.splits[split] = (ds, key)

    def __call__(self, variant: nn.Module, label: str) -> tuple[np.ndarray, ...]:
        out = []
        for ds, key in self.splits.values():
            cache_key = _features.feature_key(
                model=self.name, weights=_features.module_fingerprint(variant), **key) \
                if key is not None and self.cache else None
            x, y = _features.extract(variant, ds, batch_size=self.batch_size, device=self.device,
                                     cache_key=cache_key, cache=self.cache, progress=False,
                                     name=f"{self.name or 'model'} {label}",
                                     settings=self.settings)
            out += [x, y]
        return tuple(out)


def block_sensitivity(
    model: nn.Module,
    train: Any,
    test: Any,
    *,
    widths: Sequence[float] = SENSITIVITY_WIDTHS,
    parts: Sequence[str] = PARTS,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    n_boot: int | None = None,
    seed: int = 0,
    cache: bool = True,
    name: str | None = None,
    data_name: str | None = None,
    progress: bool = True,
    settings: Any = None,
) -> pd.DataFrame:
    """Per-block sensitivity: slim one block's attention or FFN at a time and score it.

    Args:
        model: a ViT encoder (``forward(x) -> (B, D)``; ``model.spec`` for image datasets).
        train, test: :class:`~slimlib.specs.ImageDataset` s or prepared ``(x, y)`` pairs;
            single-label (multi-label data gets scores without intervals).
        widths: width factors in (0, 1) to slim one part of one block to.
        parts: ``("attn", "ffn")`` or one of them.
        batch_size, device: feature extraction settings.
        n_boot: bootstrap draws (default :data:`slimlib.sweeping.intervals.N_BOOT`).
        seed: seed of the bootstrap.
        cache: read/write the feature cache (keys as :func:`slimlib.sweep`'s when ``name`` and
            ``data_name`` are given, so its full-width features are reused).
        name, data_name: model and dataset names of the cache keys and messages.
        progress: a progress bar over the variants.
        settings: where the cache is (``None``: :func:`slimlib.settings.current`).

    Returns:
        One row per block × part × width, after a first reference row (``part == "full"``,
        ``block == -1``: the unslimmed model, drop 0). Columns: ``block`` (index), ``name``,
        ``part``, ``width``, ``kept`` / ``full`` (per-head dims of Q/K/V, or FFN hidden units),
        ``score`` with ``score_lo`` / ``score_hi``, ``drop`` = score(full) − score with
        ``drop_lo`` / ``drop_hi`` (95 % paired bootstrap over the test images), ``n_test`` and
        ``note`` (why a part could not be slimmed; its scores are NaN).
    """
    from tqdm.auto import tqdm

    from slimlib import probes
    from slimlib.slimming import find_blocks, slim
    from slimlib.sweeping.intervals import LEVEL, N_BOOT, bootstrap, interval
    from slimlib.sweeping.outcomes import Outcomes

    widths = [float(w) for w in check_widths(widths)]
    parts = list(check_parts(parts))
    device_t = _features.resolve_device(device)
    blocks = find_blocks(model)
    feats = _Features(model, train, test, name=name, data_name=data_name, batch_size=batch_size,
                      device=device_t, cache=cache, settings=settings)

    def probe(variant: nn.Module, label: str) -> tuple[float, Outcomes | None, int]:
        tr_x, tr_y, te_x, te_y = feats(variant, label)
        value, labels, preds = probes.score_outcomes("knn", tr_x, tr_y, te_x, te_y, seed=0)
        outcome = Outcomes(np.asarray(labels), np.asarray(preds)) if labels is not None else None
        return float(value), outcome, len(te_y)

    # the reference is slim(model, 1), the model diagnose and the sweep score at width 1 (its
    # features are cached), or the model itself when slim refuses one of its blocks
    try:
        reference = slim(model, 1.0)
    except TypeError:
        reference = model
    full_value, full_outcome, n_test = probe(reference, "full width")
    rows: list[dict[str, Any]] = [{
        "block": -1, "name": "(none: full model)", "part": FULL, "width": 1.0, "kept": -1,
        "full": -1, "score": full_value, "n_test": n_test, "note": "", "_key": FULL}]
    outcomes: dict[str, Outcomes] = {FULL: full_outcome} if full_outcome is not None else {}
    done: dict[tuple, tuple[float, Outcomes | None]] = {}
    jobs = [(i, bname, part, w) for i, (bname, _) in enumerate(blocks) for part in parts
            for w in widths]
    for i, bname, part, w in tqdm(jobs, desc="block sensitivity", disable=not progress,
                                  leave=False):
        row = {"block": i, "name": bname, "part": part, "width": w, "kept": -1, "full": -1,
               "score": float("nan"), "n_test": n_test, "note": "", "_key": None}
        try:
            variant = slim_block(model, i, w, parts=(part,))
        except TypeError as err:
            row["note"] = f"left alone: {err}"
            rows.append(row)
            continue
        kept, full = _kept(find_blocks(variant)[i][1], part), _kept(blocks[i][1], part)
        key = (i, part, kept)  # widths with the same kept dims are the same model
        if key not in done:
            value, outcome, _ = probe(variant, f"block {i} {part} @ width {w:g}")
            done[key] = (value, outcome)
            if outcome is not None:
                outcomes[str(key)] = outcome
        row.update(kept=kept, full=full, score=done[key][0], _key=str(key))
        rows.append(row)

    table = pd.DataFrame(rows)
    table["drop"] = full_value - table["score"]
    for col in ("score_lo", "score_hi", "drop_lo", "drop_hi"):
        table[col] = float("nan")
    if outcomes:
        _, draws = bootstrap({k: [o] for k, o in outcomes.items()},
                             n_boot=N_BOOT if n_boot is None else n_boot, seed=seed)
        for idx, key in table["_key"].items():
            if key in draws:
                table.loc[idx, ["score_lo", "score_hi"]] = interval(draws[key], LEVEL)
                table.loc[idx, ["drop_lo", "drop_hi"]] = interval(draws[FULL] - draws[key], LEVEL)
    columns = ["block", "name", "part", "width", "kept", "full", "score", "score_lo",
               "score_hi", "drop", "drop_lo", "drop_hi", "n_test", "note"]
    return table[columns]


# --- what slimming did -------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What :func:`slimlib.slim` does to a model at one width (:func:`verify_slimming`).

    Attributes:
        width: the width factor.
        blocks: one row per transformer block: ``block``, ``name``, ``type``, ``attention`` /
            ``ffn`` (``"slimmed"`` or ``"left alone: <why>"``), ``heads``, ``d_k`` →
            ``d_k_kept`` (Q/K/V dims per head), ``d_h`` → ``d_h_kept`` (FFN hidden units),
            ``shapes`` (the real weight shapes of every Linear it cut, before → after),
            ``params_before`` / ``params_after``.
        left_alone: every module or parameter outside the slimmed layers that holds weights:
            ``module``, ``type``, ``params``, ``reason`` (modules repeated in every block are
            one row, e.g. ``norm1 (in each of 12 blocks)``).
        params_before, params_after: parameters of the whole model before/after slimming.
    """

    width: float
    blocks: pd.DataFrame
    left_alone: pd.DataFrame
    params_before: int
    params_after: int


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shape(t: torch.Tensor) -> str:
    return "×".join(str(s) for s in t.shape)


def _reason(name: str, module: nn.Module | None) -> str:
    """Why slimming leaves a module (or a parameter, ``module=None``) as it is."""
    leaf = name.rsplit(".", 1)[-1].lower()
    cls = type(module).__name__.lower() if module is not None else ""
    if module is None:
        if any(t in leaf for t in ("token", "pos", "embed")):
            return "token / position embedding on the residual width d, which slimming keeps"
        return "parameter outside the blocks' attention and FFN (slimming never touches it)"
    if "layerscale" in cls or leaf in ("ls1", "ls2", "gamma_1", "gamma_2"):
        return "LayerScale on the residual width d, which slimming keeps"
    if "norm" in cls:
        return "norm on the residual width d, which slimming keeps"
    if "embed" in leaf or "embed" in cls or isinstance(module, nn.Conv2d):
        return "embedding into the residual width d, which slimming keeps"
    if "head" in leaf or "head" in cls:
        return "head on the encoder's output (outside the blocks)"
    return (f"{type(module).__name__} is not a transformer block slimlib recognises (a block "
            "has .attn and .mlp children): left at full width")


def _left_alone(model: nn.Module, blocks: list[tuple[str, nn.Module]]) -> list[dict[str, Any]]:
    block_names = {n for n, _ in blocks}
    holders = {n.rsplit(".", k)[0] for n in block_names for k in range(1, n.count(".") + 1)}
    holders.add("")
    found: list[dict[str, Any]] = []
    inside: dict[tuple[str, str], dict[str, Any]] = {}

    def visit(prefix: str, module: nn.Module) -> None:
        for pname, param in module.named_parameters(recurse=False):
            full = f"{prefix}.{pname}" if prefix else pname
            found.append({"module": full, "type": "Parameter", "params": param.numel(),
                          "reason": _reason(full, None)})
        for cname, child in module.named_children():
            full = f"{prefix}.{cname}" if prefix else cname
            if full in block_names:  # its attn / mlp are in the blocks table
                for sub, grand in child.named_children():
                    if sub in ("attn", "mlp") or not _params(grand):
                        continue
                    key = (sub, type(grand).__name__)
                    entry = inside.setdefault(key, {"module": sub, "type": key[1], "params": 0,
                                                    "count": 0, "reason": _reason(sub, grand)})
                    entry["params"] += _params(grand)
                    entry["count"] += 1
            elif full in holders:
                visit(full, child)
            elif _params(child):
                found.append({"module": full, "type": type(child).__name__,
                              "params": _params(child), "reason": _reason(full, child)})

    visit("", model)
    for entry in inside.values():
        count = entry.pop("count")
        entry["module"] = f"{entry['module']} (in each of {count} blocks)" if count > 1 \
            else entry["module"]
        found.append(entry)
    return found


def verify_slimming(model: nn.Module, width: float, *, parts: Sequence[str] = PARTS,
                    scale: str = "slimmed", align: int | None = None) -> Verification:
    """What slimming ``model`` to ``width`` does, read from the slimmed modules themselves.

    Each block is slimmed with :func:`slimlib.slim` (the same per-block rule as slimming the
    whole model) and compared with the original: kept per-head Q/K/V dims and FFN hidden
    units, the real shapes of the Linear weights that changed, parameters before/after. A part
    slimlib cannot slim (an attention or FFN type it does not know) is reported as left alone
    with slimlib's reason (``slimlib.slim`` itself refuses such a model unless ``parts``
    leaves that part out). Every module outside the slimmed layers that holds weights
    (embeddings, tokens, norms, LayerScale, heads, modules that are not transformer blocks)
    is listed in :attr:`Verification.left_alone` with the reason. ``align``: as
    :func:`slimlib.slim`'s (kept dims rounded up to a multiple of it).
    """
    from slimlib.slimming import SlimAttention, attention_layout, ffn_hidden, find_blocks, slim

    width = float(check_widths([width])[0])
    parts = tuple(check_parts(parts))
    blocks = find_blocks(model)
    rows = []
    before_total = _params(model)
    after_total = before_total
    for i, (name, block) in enumerate(blocks):
        status = {p: "left alone: not in parts" for p in PARTS if p not in parts}
        ok = []
        for part in parts:
            try:
                slim(block, width, parts=(part,), align=align)
                ok.append(part)
            except TypeError as err:
                status[part] = f"left alone: {err}"
        new = slim(block, width, parts=tuple(ok), align=align) if ok else block
        status.update({p: "slimmed" for p in ok})
        try:
            layout = attention_layout(block.attn)
            heads, d_k = layout.num_heads, layout.head_dim
            d_k_kept = new.attn.head_dim if isinstance(new.attn, SlimAttention) and "attn" in ok \
                else d_k
        except TypeError:
            heads = d_k = d_k_kept = None
        try:
            d_h, d_h_kept = ffn_hidden(block.mlp), ffn_hidden(new.mlp)
        except AttributeError:
            d_h = d_h_kept = None
        originals = dict(block.named_modules())
        shapes = []
        for sub, layer in new.named_modules():
            old = originals.get(sub)
            if isinstance(layer, nn.Linear) and isinstance(old, nn.Linear) \
                    and layer.weight.shape != old.weight.shape:
                shapes.append(f"{sub} {_shape(old.weight)} → {_shape(layer.weight)}")
        before, after = _params(block), _params(new)
        after_total += after - before
        rows.append({"block": i, "name": name, "type": type(block).__name__,
                     "attention": status["attn"], "ffn": status["ffn"], "heads": heads,
                     "d_k": d_k, "d_k_kept": d_k_kept, "d_h": d_h, "d_h_kept": d_h_kept,
                     "shapes": "; ".join(shapes), "params_before": before, "params_after": after})
    left = pd.DataFrame(_left_alone(model, blocks),
                        columns=["module", "type", "params", "reason"])
    return Verification(width, pd.DataFrame(rows), left, before_total, after_total)


# --- the report section ------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able rows (NaN -> None, NumPy scalars -> Python)."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else
                 v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def sensitivity_section(
    model: nn.Module,
    train: Any,
    test: Any,
    *,
    widths: Sequence[float] = SENSITIVITY_WIDTHS,
    verify_width: float = 0.5,
    verify_why: str = "",
    verify_align: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`block_sensitivity` and :func:`verify_slimming` as one JSON-able dict (the
    ``"sensitivity"`` entry of :func:`slimlib.diagnose`'s result, rendered by
    :func:`sensitivity_markdown` / :func:`sensitivity_html`). ``verify_width``: the width of
    the verification table (slimmed with ``align=verify_align``), ``verify_why`` says why it
    was chosen (shown with it); ``kwargs``
    go to :func:`block_sensitivity`."""
    started = time.perf_counter()
    table = block_sensitivity(model, train, test, widths=widths, **kwargs)
    ver = verify_slimming(model, verify_width, align=verify_align)
    return {
        "widths": [float(w) for w in check_widths(widths)],
        "n_train": len(train[1]) if isinstance(train, tuple) else len(train),
        "rows": _records(table),
        "verification": {"width": ver.width, "align": verify_align, "why": verify_why, "blocks": _records(ver.blocks),
                         "left_alone": _records(ver.left_alone),
                         "params_before": ver.params_before, "params_after": ver.params_after},
        "runtime_s": time.perf_counter() - started,
    }


_PART_NAMES = {"attn": "attention", "ffn": "FFN"}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _cell(row: dict[str, Any]) -> str:
    if row["score"] is None:
        return "–"
    interval = "" if row["drop_lo"] is None else \
        f" [{_fmt(row['drop_lo'])}, {_fmt(row['drop_hi'])}]"
    return f"{_fmt(row['drop'])}{interval}"


def _significant(row: dict[str, Any]) -> bool:
    return row["drop_lo"] is not None and (row["drop_lo"] > 0 or row["drop_hi"] < 0)


def _grid(section: dict[str, Any]) -> tuple[list[str], list[list[tuple[str, bool]]], list[str]]:
    """Header, rows of (cell text, interval excludes 0) and notes of the pivoted drop table:
    one row per block, one column per part × width."""
    rows = [r for r in section["rows"] if r["part"] != FULL]
    parts = list(dict.fromkeys(r["part"] for r in rows))
    widths = section["widths"]
    header = ["block"] + [f"{_PART_NAMES[p]} s = {w:g}" for p in parts for w in widths]
    by_key = {(r["block"], r["part"], r["width"]): r for r in rows}
    grid = []
    for block, name in dict.fromkeys((r["block"], r["name"]) for r in rows):
        cells = [(f"{block}: {name}", False)]
        for p in parts:
            for w in widths:
                r = by_key.get((block, p, w))
                cells.append((_cell(r), _significant(r)) if r else ("–", False))
        grid.append(cells)
    notes = list(dict.fromkeys(f"block {r['block']} {_PART_NAMES[r['part']]}: {r['note']}"
                               for r in rows if r["note"]))
    return header, grid, notes


def _full(section: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in section["rows"] if r["part"] == FULL)


def _intro(section: dict[str, Any]) -> str:
    full = _full(section)
    score = _fmt(full["score"])
    if full["score_lo"] is not None:
        score += f" [{_fmt(full['score_lo'])}, {_fmt(full['score_hi'])}]"
    return (f"One block's attention (per-head Q/K/V dims) or FFN (hidden units) is slimmed to "
            f"width s, every other block stays at full width; the k-NN probe, fitted on "
            f"{section.get('n_train', '?')} training images, scores the same test images as "
            f"above. Each cell is the drop in test score against the full model probed the "
            f"same way ({score} on {full['n_test']} test images): full − slimmed, > 0 is worse, with "
            "its 95 % paired bootstrap interval over the test images; bold: the interval "
            "excludes 0. A block whose drop stays near 0 at small s tolerates narrowing.")


def _verification_rows(ver: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["block", "type", "attention", "Q/K/V dims per head", "FFN", "FFN hidden units",
              "weight shapes (before → after)", "params before → after"]
    rows = []
    for b in ver["blocks"]:
        heads = f"{b['heads']} heads × " if b["heads"] is not None else ""
        rows.append([f"{b['block']}: {b['name']}", b["type"], b["attention"],
                     f"{heads}{_fmt(b['d_k'])} → {_fmt(b['d_k_kept'])}", b["ffn"],
                     f"{_fmt(b['d_h'])} → {_fmt(b['d_h_kept'])}", b["shapes"] or "unchanged",
                     f"{b['params_before']:,} → {b['params_after']:,}"])
    return header, rows


def _left_rows(ver: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    return (["left alone", "type", "params", "why"],
            [[r["module"], r["type"], f"{r['params']:,}", r["reason"]] for r in ver["left_alone"]])


def _totals(ver: dict[str, Any]) -> str:
    before, after = ver["params_before"], ver["params_after"]
    why = f" ({ver['why']})" if ver.get("why") else ""
    return (f"At s = {ver['width']:g}{why} every block is slimmed as below (read from the "
            f"slimmed modules): {before:,} → {after:,} parameters ({after / before:.1%} kept).")


def sensitivity_png(section: dict[str, Any]) -> bytes:
    """Heat map of the drop: blocks × widths, one panel per part (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in section["rows"] if r["part"] != FULL]
    parts = list(dict.fromkeys(r["part"] for r in rows))
    blocks = list(dict.fromkeys(r["block"] for r in rows))
    widths = section["widths"]
    data = {p: np.full((len(blocks), len(widths)), np.nan) for p in parts}
    for r in rows:
        if r["drop"] is not None:
            data[r["part"]][blocks.index(r["block"]), widths.index(r["width"])] = r["drop"]
    finite = np.concatenate([d[np.isfinite(d)] for d in data.values()] + [np.zeros(1)])
    span = max(float(np.abs(finite).max()), 1e-3)
    fig, axes = plt.subplots(1, len(parts), figsize=(1.6 + 1.1 * len(widths) * len(parts),
                                                      1.2 + 0.32 * len(blocks)),
                             dpi=110, squeeze=False)
    for ax, part in zip(axes[0], parts, strict=True):
        image = ax.imshow(data[part], cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto")
        for (i, j), value in np.ndenumerate(data[part]):
            ax.text(j, i, "–" if np.isnan(value) else f"{value:.3f}", ha="center",
                    va="center", fontsize=7)
        ax.set_xticks(range(len(widths)), [f"{w:g}" for w in widths])
        ax.set_yticks(range(len(blocks)), [str(b) for b in blocks])
        ax.set_xlabel("width s")
        ax.set_title(f"{_PART_NAMES[part]} slimmed", fontsize=9)
    axes[0][0].set_ylabel("block (the only one slimmed)")
    fig.colorbar(image, ax=list(axes[0]), label="drop in test score (> 0: worse)", shrink=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)]


def sensitivity_markdown(section: dict[str, Any], png_name: str = "sensitivity.png") -> str:
    """The Markdown section: the drop table, the heat map (``png_name``) and the verification
    tables."""
    header, grid, notes = _grid(section)
    cells = [[f"**{t}**" if bold else t for t, bold in row] for row in grid]
    ver = section["verification"]
    lines = ["## Which blocks tolerate narrowing", "", _intro(section), "",
             *_md_table(header, cells), "", *(f"- {n}" for n in notes),
             f"![drop per block and width]({png_name})", "",
             "## What slimming did", "", _totals(ver), "",
             *_md_table(*_verification_rows(ver)), "", *_md_table(*_left_rows(ver)), ""]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{'<b>' + esc(t) + '</b>' if bold else esc(t)}</td>"
                                    for t, bold in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plain(rows: list[list[str]]) -> list[list[tuple[str, bool]]]:
    return [[(c, False) for c in r] for r in rows]


def sensitivity_html(section: dict[str, Any], png: bytes | None = None) -> str:
    """The HTML section: the drop table, the heat map (a data URI; ``png`` or rendered with
    :func:`sensitivity_png`) and the verification tables."""
    esc = html.escape
    header, grid, notes = _grid(section)
    uri = "data:image/png;base64," + base64.b64encode(
        png if png is not None else sensitivity_png(section)).decode()
    ver = section["verification"]
    v_head, v_rows = _verification_rows(ver)
    l_head, l_rows = _left_rows(ver)
    note_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return (f"<h2>Which blocks tolerate narrowing</h2><p>{esc(_intro(section))}</p>"
            f"{_html_table(header, grid)}{f'<ul>{note_html}</ul>' if notes else ''}"
            f"<p><img alt=\"drop per block and width\" src=\"{uri}\"></p>"
            f"<h2>What slimming did</h2><p>{esc(_totals(ver))}</p>"
            f"{_html_table(v_head, _plain(v_rows))}<p></p>{_html_table(l_head, _plain(l_rows))}")
