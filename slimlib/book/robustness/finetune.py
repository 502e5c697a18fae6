"""Fine-tuning a slimmed encoder vs probing its frozen features (chapter 10, rebuttal).

The paper fine-tunes DOFA/Prithvi/TerraMind slimmed to s in {0.001, 0.01, 0.1, 0.5, 1} on
m-eurosat (LR 3e-3, 3 seeds; optimiser and epochs unpublished) and finds the curve shape of
the linear probe kept. Here a small encoder is slimmed (:func:`slimlib.slim`, a physically
narrower copy), given a linear head and trained end to end with AdamW on the training split;
a seed changes the head's init, the batch order and the flips. :func:`finetune_table` puts
the fine-tuned accuracy beside the linear probe and the k-NN on the frozen features of the
same slimmed encoder, and :func:`recipe_works` says whether fine-tuning beat the frozen
linear probe at full width at all (if not, the comparison is "not testable", never a result).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["FinetuneRecipe", "finetune_once", "finetune_table", "recipe_works"]


class FinetuneRecipe:
    """Settings of one fine-tuning run (keyword-only, validated).

    Attributes:
        epochs: passes over the training split; ``lr``: AdamW peak learning rate (cosine decay
        after one warm-up epoch); ``weight_decay``; ``batch_size``; ``threads``: torch threads
        while training (``None``: leave as is).
    """

    def __init__(self, *, epochs: int = 10, lr: float = 1e-3, weight_decay: float = 0.05,
                 batch_size: int = 64, threads: int | None = None) -> None:
        for key, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an int >= {low}; got {value!r}")
        if not (isinstance(lr, int | float) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number; got {lr!r}")
        if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
        self.epochs, self.lr, self.weight_decay = epochs, float(lr), float(weight_decay)
        self.batch_size, self.threads = batch_size, threads

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size}


class _Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, dim: int, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, S, S) -> (B, K)
        return self.head(self.encoder(x))


def finetune_once(encoder: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
                  x_test: torch.Tensor, y_test: torch.Tensor, *, seed: int,
                  recipe: FinetuneRecipe | None = None) -> np.ndarray:
    """Fine-tune a copy of ``encoder`` (``(B, C, S, S) -> (B, D)``) with a linear head on
    prepared ``x_train`` ``(N, C, S, S)`` / ``y_train`` ``(N,)`` and return its predicted
    labels ``(M,)`` on ``x_test``. ``encoder`` itself is not changed."""
    import copy

    recipe = recipe or FinetuneRecipe()
    y_tr = torch.as_tensor(y_train, dtype=torch.int64)
    n_classes = int(max(int(y_tr.max()), int(torch.as_tensor(y_test).max())) + 1)
    threads = torch.get_num_threads()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            enc = copy.deepcopy(encoder).train()
            with torch.no_grad():
                dim = int(enc(x_train[:2]).shape[1])
            model = _Classifier(enc, dim, n_classes)
            opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                    weight_decay=recipe.weight_decay)
            gen = torch.Generator().manual_seed(int(seed))
            n = x_train.shape[0]
            steps_per_epoch = max(1, math.ceil(n / recipe.batch_size))
            total = recipe.epochs * steps_per_epoch
            step = 0
            for _ in range(recipe.epochs):
                perm = torch.randperm(n, generator=gen)
                for start in range(0, n, recipe.batch_size):
                    idx = perm[start:start + recipe.batch_size]
                    xb = x_train[idx]
                    flip = torch.rand(xb.shape[0], generator=gen) < 0.5
                    xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                    warm = steps_per_epoch
                    lr = recipe.lr * (step + 1) / warm if step < warm else \
                        recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
                    for group in opt.param_groups:
                        group["lr"] = lr
                    loss = nn.functional.cross_entropy(model(xb), y_tr[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
            model.eval()
            with torch.no_grad():
                pred = torch.cat([model(x_test[i:i + 256]).argmax(1)
                                  for i in range(0, x_test.shape[0], 256)])
    finally:
        torch.set_num_threads(threads)
    return pred.numpy()


def finetune_table(encoder: nn.Module, train: Any, test: Any, *, widths: Iterable[float],
                   seeds: Iterable[int], recipe: FinetuneRecipe | None = None,
                   batch_size: int = 256, device: Any = None,
                   cache_dir: str | os.PathLike | None = None,
                   settings: Any = None) -> pd.DataFrame:
    """Fine-tuned, linear-probe and k-NN macro accuracy of ``slim(encoder, s)`` per width
    and seed on ``(train, test)`` ImageDatasets (prepared with ``encoder.spec``).

    Returns ``width, seed, protocol ("finetune" | "linear" | "knn"), value, n_test``; the
    test predictions are in ``table.attrs["predictions"]`` ``{(protocol, width, seed): (M,)}``
    and the test labels in ``table.attrs["labels"]``. With ``cache_dir`` the result is kept
    there as ``finetune-<key>.npz``, keyed by the encoder's weights, both splits, the recipe,
    widths and seeds, and read back instead of retraining.
    """
    from slimlib import features, probes
    from slimlib.book.robustness.analyses import macro_accuracy
    from slimlib.slimming import slim

    recipe = recipe or FinetuneRecipe()
    widths, seeds = sorted({float(w) for w in widths}), [int(s) for s in seeds]
    path = None
    if cache_dir is not None:
        key = features.feature_key(
            kind="finetune", weights=features.module_fingerprint(encoder),
            train=features.data_fingerprint(train), test=features.data_fingerprint(test),
            recipe=recipe.as_dict(), widths=widths, seeds=seeds, torch=torch.__version__)
        path = Path(cache_dir) / f"finetune-{key}.npz"
        if path.is_file():
            return _read_cached(path)
    spec = encoder.spec
    x_tr = features.prepare_dataset(train, spec)
    x_te = features.prepare_dataset(test, spec)
    y_tr, y_te = train.labels, test.labels
    rows, preds = [], {}
    for w in widths:
        slimmed = slim(encoder, w)
        f_tr, _ = features.extract(slimmed, train, batch_size=batch_size, device=device,
                                   progress=False, width=w, settings=settings)
        f_te, _ = features.extract(slimmed, test, batch_size=batch_size, device=device,
                                   progress=False, width=w, settings=settings)
        for seed in seeds:
            torch.manual_seed(int(seed))
            out = {
                "finetune": finetune_once(slimmed, x_tr, y_tr, x_te, y_te, seed=int(seed),
                                          recipe=recipe),
                "linear": probes.linear_probe_predict(f_tr, y_tr.numpy(), f_te),
                "knn": probes.knn_predict(f_tr, y_tr.numpy(), f_te),
            }
            for p, pred in out.items():
                preds[(p, w, int(seed))] = np.asarray(pred)
                rows.append({"width": w, "seed": int(seed), "protocol": p,
                             "value": macro_accuracy(y_te.numpy(), pred),
                             "n_test": int(len(y_te))})
    table = pd.DataFrame(rows)
    table.attrs["predictions"] = preds
    table.attrs["labels"] = y_te.numpy()
    if path is not None:
        _write_cached(path, table)
    return table


def _write_cached(path: Path, table: pd.DataFrame) -> None:
    """Atomically write a :func:`finetune_table` result (rows, predictions, labels)."""
    from slimlib import _io

    path.parent.mkdir(parents=True, exist_ok=True)
    preds = table.attrs["predictions"]
    arrays = {f"pred|{p}|{w!r}|{s}": v for (p, w, s), v in preds.items()}
    arrays.update(labels=table.attrs["labels"],
                  **{f"col|{c}": (table[c].to_numpy() if pd.api.types.is_numeric_dtype(table[c])
                                   else table[c].to_numpy().astype(str)) for c in table.columns})
    with _io.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _read_cached(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as data:
        table = pd.DataFrame({k[4:]: data[k] for k in data.files if k.startswith("col|")})
        preds = {}
        for k in data.files:
            if k.startswith("pred|"):
                _, p, w, s = k.split("|")
                preds[(p, float(w), int(s))] = data[k]
        table.attrs["predictions"] = preds
        table.attrs["labels"] = data["labels"]
    return table


def recipe_works(table: pd.DataFrame) -> tuple[bool, str]:
    """Whether fine-tuning reached at least the frozen linear probe at full width (seed means,
    within 2 binomial SEs). Returns ``(works, reason)``."""
    from slimlib.sweeping.controls import binomial_se

    full = table[np.isclose(table["width"], 1.0)]
    if full.empty:
        return False, "no width-1 rows"
    ft = float(full.loc[full["protocol"] == "finetune", "value"].mean())
    lin = float(full.loc[full["protocol"] == "linear", "value"].mean())
    se = float(binomial_se(lin, full["n_test"].max())) * math.sqrt(2)
    if ft + 2 * se < lin:
        return False, (f"fine-tuning reached {ft:.3f} at full width, below the frozen linear "
                       f"probe's {lin:.3f} (2 SE = {2 * se:.3f}): the recipe did not work in "
                       "this budget")
    return True, f"fine-tuned {ft:.3f} vs frozen linear {lin:.3f} at full width"
