"""The embedding-only floor: what a model's unslimmed embedding carries with no transformer
block run (docs/evaluation.md, "The embedding-only floor").

* :func:`embedding_only`: a copy of a model whose transformer blocks are skipped (patch
  embedding -> final norm -> the model's own pooling);
* :class:`EmbeddingFloor` / :func:`embedding_floor`: **the floor** the book reports, the mean
  over the patch tokens that the model hands its first block (patch plus position, and where
  the model adds them channel/month, embeddings; class and register tokens dropped), for every
  model whatever its pooling. :func:`embedding_only` alone is no floor for a CLS-pooled model:
  with no block run its CLS token is the same constant for every image (chance);
* :func:`degenerate_features`, :func:`floor_scores`: probe scores of the floor, with a flag
  for constant features and the per-image outcomes the sweep rows carry.

:mod:`slimlib.sweeping.controls` re-exports these names.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["SkippedBlock", "embedding_only", "EmbeddingFloor", "embedding_floor",
           "degenerate_features", "floor_scores"]


class SkippedBlock(nn.Module):
    """Stands in for a transformer block and returns its input unchanged.

    Accepts (and ignores) any extra arguments a model passes its blocks (attention masks, ...).
    Shapes: ``x`` (B, N, D) -> (B, N, D).
    """

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return x


def embedding_only(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every transformer block skipped.

    What is left is what slimming never touches: patch/position (and, where the model has
    them, channel/month) embeddings, the final norm and the model's own pooling. For a
    mean-pooled model this is a floor; for a CLS-pooled one it is not (the CLS token is the
    same for every image): the book's floor is :func:`embedding_floor`, built on this copy.
    ``model`` is not modified; the copy keeps ``.spec``.

    Raises:
        TypeError: ``model`` has no transformer blocks (see :func:`slimlib.find_blocks`).
    """
    from slimlib.slimming import find_blocks

    names = [name for name, _ in find_blocks(model)]
    new = copy.deepcopy(model)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        setattr(parent, child, SkippedBlock())
    return new.eval()


class _TokenRecorder(nn.Module):
    """Stands in for the first transformer block: keeps the tokens it is handed (and the
    boolean attention mask, where the model passes one) and returns them unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[str, Any] = {}

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._seen["tokens"] = x
        self._seen["attn_mask"] = kwargs.get("attn_mask")
        return x


def _num_prefix_tokens(model: nn.Module) -> int:
    """Class/register tokens in front of the patch tokens: a timm-style ``num_prefix_tokens``
    anywhere in ``model``; else 1 for a CLS-pooled spec, 0 otherwise."""
    for module in model.modules():
        value = getattr(module, "num_prefix_tokens", None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    spec = getattr(model, "spec", None)
    return 1 if getattr(spec, "feature", None) == "cls" else 0


class EmbeddingFloor(nn.Module):
    """The embedding-only floor of a model: ``forward(x) -> (B, D)``, the mean over the patch
    tokens the model hands its first transformer block.

    The tokens are whatever the model builds before its blocks (patch embedding plus position
    embedding, and the channel/month embeddings of models that add them); class and register
    tokens (``num_prefix``) are dropped; where the model passes its blocks a boolean attention
    mask (True = may attend, shape ``(B, 1, 1, N)``), only those tokens are averaged. No block,
    no final norm and no pooling head runs on them. Keeps ``.spec``.
    """

    def __init__(self, model: nn.Module, num_prefix: int) -> None:
        super().__init__()
        from slimlib.slimming import find_blocks

        names = [name for name, _ in find_blocks(model)]
        self.model = embedding_only(model)
        first = names[0]
        parent_name, _, child = first.rpartition(".")
        parent = self.model.get_submodule(parent_name) if parent_name else self.model
        self.recorder = _TokenRecorder()
        setattr(parent, child, self.recorder)
        self.num_prefix = int(num_prefix)
        spec = getattr(model, "spec", None)
        if spec is not None:
            self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.recorder._seen.clear()
        self.model(x)  # blocks skipped: only the embedding, the final norm and pooling run
        tokens = self.recorder._seen.get("tokens")
        if tokens is None or tokens.ndim != 3:
            raise RuntimeError("the model never called its first transformer block with "
                               "(B, N, D) tokens; the embedding-only floor needs that call")
        patches = tokens[:, self.num_prefix:]
        mask = self.recorder._seen.get("attn_mask")
        self.recorder._seen.clear()
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.ndim == 4 \
                and mask.shape[-1] == tokens.shape[1]:
            keep = mask[:, 0, 0, self.num_prefix:].to(patches.dtype).unsqueeze(-1)
            return (patches * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
        return patches.mean(dim=1)


def embedding_floor(model: nn.Module) -> EmbeddingFloor:
    """The embedding-only floor of ``model`` (see :class:`EmbeddingFloor`): one definition for
    every model, whatever its pooling, so that a CLS-pooled model's floor is not the constant
    CLS token. ``model`` is not modified.

    Raises:
        TypeError: ``model`` has no transformer blocks (see :func:`slimlib.find_blocks`).
    """
    return EmbeddingFloor(model, _num_prefix_tokens(model)).eval()


def degenerate_features(x: Any, *, rtol: float = 1e-6) -> bool:
    """Whether features ``x`` (N, D) are (numerically) the same for every image: the largest
    per-feature standard deviation over images is at most ``rtol`` times the largest
    magnitude. A probe of such features scores chance whatever the images hold."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        return False
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return float(np.max(np.std(x, axis=0))) <= rtol * max(scale, 1e-30)


def floor_scores(encoder: nn.Module, datasets: Mapping[str, tuple[Any, Any]], *,
                 name: str, protocols: Iterable[str] = ("knn",), seeds: Iterable[int] = (0,),
                 batch_size: int = 256, device: Any = None, train_fraction: float = 1.0,
                 settings: Any = None) -> pd.DataFrame:
    """Probe scores of :func:`embedding_floor` ``(encoder)`` on each ``(train, test)`` pair.

    Features go through the feature cache like any sweep's; ``seed`` and ``train_fraction``
    mean what they mean in :func:`slimlib.probes.knn_score`; ``settings`` says where the cache
    is (``None``: :func:`slimlib.settings.current`). A cross-fitted pair (one with
    ``.crossfit``, :class:`slimlib.probes.CrossFitted`) is scored over every image, as the
    sweep scores it, so its outcomes pair with the sweep's. Returns one row per dataset,
    protocol and seed: ``model, dataset, protocol, seed, value, n_test, degenerate``
    (the floor's test features are constant over images, :func:`degenerate_features`) and
    ``outcomes`` (per-image outcomes, :mod:`slimlib.sweeping.outcomes`; empty for
    multi-label data), so the floor can be paired image by image with sweep rows of the
    same test images.
    """
    from slimlib import features
    from slimlib.sweeping._probing import _score  # the sweep's own scoring and outcome cells

    floor = embedding_floor(encoder)
    label = f"{name} (embedding floor)"
    rows = []
    for dataset, pair in datasets.items():
        crossfit = getattr(pair, "crossfit", None)
        if crossfit is not None:  # every image a test image once, as the sweep scores it
            x_all, y_all = features.extract(floor, crossfit.dataset, batch_size=batch_size,
                                            device=device, progress=False, name=label,
                                            settings=settings)
            train, test, folds = (x_all, y_all), (x_all, y_all), crossfit.fold_ids()
        else:
            x_train, y_train = features.extract(floor, pair[0], batch_size=batch_size,
                                                device=device, progress=False, name=label,
                                                settings=settings)
            x_test, y_test = features.extract(floor, pair[1], batch_size=batch_size,
                                              device=device, progress=False, name=label,
                                              settings=settings)
            train, test, folds = (x_train, y_train), (x_test, y_test), None
        degenerate = degenerate_features(test[0])
        for protocol in protocols:
            for seed in seeds:
                value, _, cell = _score(protocol, train, test, int(seed), train_fraction,
                                        folds=folds)
                rows.append({"model": name, "dataset": dataset, "protocol": protocol,
                             "seed": int(seed), "value": float(value),
                             "n_test": int(len(test[1])), "degenerate": bool(degenerate),
                             "outcomes": cell})
    return pd.DataFrame(rows, columns=["model", "dataset", "protocol", "seed", "value",
                                       "n_test", "degenerate", "outcomes"])
