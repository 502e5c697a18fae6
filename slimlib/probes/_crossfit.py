"""Cross-fitted probes: every image of a small dataset is a test image exactly once.

A fixed train/test split of a small dataset scores the probe on a small test set (UC Merced's
42 images, EuroSAT 13-band's 54). With *k*-fold cross-fitting the probe is fitted *k* times,
each time on the images of the other *k* − 1 folds, and predicts the held-out fold; the
held-out predictions of all folds together give every image one prediction, and the score
(macro accuracy) is computed once over all of them. ``n_test`` is then every image and the
per-image outcomes list every image in dataset order, so intervals rest on all the images we
have (``docs/evaluation.md``).

* :func:`fold_ids`: the seeded, stratified fold of each image (scikit-learn's
  ``StratifiedKFold(shuffle=True, random_state=seed)``);
* :func:`crossfit_outcomes`: the cross-fitted ``(value, labels, preds)`` of a probe; a probe
  seed with ``train_fraction < 1`` draws its class-stratified subset inside each fold's
  training bank, as it does in a fixed split;
* :class:`CrossFit` (a dataset evaluated that way) and :class:`CrossFitted` (the ``(train,
  test)`` pair :func:`slimlib.book.profiles.load_datasets` returns for it: the dataset's own fixed
  split for code that needs one, with ``.crossfit`` for code that cross-fits, such as
  :func:`slimlib.sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from slimlib._validation import check_int
from slimlib.specs import ImageDataset

__all__ = ["FOLDS", "NOTE", "CrossFit", "CrossFitted", "fold_ids", "crossfit_outcomes",
           "bank_size"]

#: Default number of folds.
FOLDS = 5
#: Start of the ``notes`` entry of a cross-fitted sweep row (:func:`note`).
NOTE = "cross-fitted"


def fold_ids(labels: Any, *, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """The fold ``0 … folds-1`` of each image: stratified by class, shuffled with ``seed``.

    Raises:
        ValueError: multi-label labels, fewer images than folds, ``folds < 2``.
    """
    from sklearn.model_selection import StratifiedKFold

    folds = check_int(folds, "folds", low=2)
    y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1:
        raise ValueError("cross-fitting needs single-label (N,) labels; evaluate multi-label "
                         "data on their fixed train/test split")
    if y.size < folds:
        raise ValueError(f"{y.size} images cannot be split into {folds} folds; lower folds=")
    counts = np.unique(y, return_counts=True)[1]
    if counts.max() < folds:
        raise ValueError(f"every class has fewer than {folds} images (at most {counts.max()}): "
                         "too few for stratified folds; lower folds= or use more images per "
                         "class")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = np.empty(y.size, dtype=np.int64)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(y.size), y)):
        out[test] = fold
    return out


def bank_size(ids: np.ndarray) -> int:
    """The mean training-bank size of a fold (all images minus the held-out fold), rounded."""
    counts = np.bincount(ids)
    return int(round(float(np.mean(ids.size - counts))))


def crossfit_outcomes(protocol: str, x: Any, y: Any, ids: np.ndarray, *, seed: int = 0,
                      **kwargs: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """Cross-fitted probe outcomes: ``(value, labels, preds)`` over every image, in order.

    Args:
        protocol: ``"knn"`` or ``"linear"`` (:func:`slimlib.probes.score_outcomes`).
        x, y: features ``(N, D)`` and single-label class ids ``(N,)`` of every image.
        ids: the fold of each image (:func:`fold_ids`).
        seed, kwargs: passed to the probe for each fold (``seed`` with ``train_fraction < 1``
            draws the subset of that fold's training bank).

    Returns:
        ``value`` is the macro accuracy of all held-out predictions together (not a mean of
        per-fold scores), ``labels`` = ``y`` and ``preds`` the held-out prediction of each image.
    """
    from slimlib.probes import score_outcomes
    from slimlib.probes._inputs import as_features, as_labels, macro_accuracy

    feats = as_features(x, "x")
    labels = as_labels(y, "y")
    ids = np.asarray(ids)
    if labels.ndim != 1:
        raise ValueError("cross-fitting needs single-label (N,) labels")
    if ids.shape != labels.shape or feats.shape[0] != labels.size:
        raise ValueError(f"x ({feats.shape[0]}), y ({labels.size}) and ids ({ids.size}) must "
                         "describe the same images")
    preds = np.empty_like(labels)
    for fold in np.unique(ids):
        held = ids == fold
        mask = torch.from_numpy(held)
        _, _, fold_preds = score_outcomes(protocol, feats[~mask], labels[~held], feats[mask],
                                          labels[held], seed=seed, **kwargs)
        preds[held] = fold_preds
    return macro_accuracy(labels, preds), labels, preds


def note(folds: int, seed: int, n: int) -> str:
    """The ``notes`` entry of a cross-fitted row."""
    return (f"{NOTE}: {folds} stratified folds (fold seed {seed}); each of the {n} images is a "
            f"test image once, predicted by a probe fitted on the other {folds - 1} folds")


@dataclass(frozen=True)
class CrossFit:
    """A dataset evaluated by ``folds``-fold cross-fitting over all its images."""

    dataset: ImageDataset
    folds: int = FOLDS
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.folds, "folds", low=2)
        check_int(self.seed, "seed", low=0)

    def fold_ids(self) -> np.ndarray:
        return fold_ids(self.dataset.labels, folds=self.folds, seed=self.seed)


class CrossFitted(tuple):
    """A ``(train, test)`` pair (the dataset's own fixed split, for code that needs one) that
    also carries ``.crossfit``: the :class:`CrossFit` a sweep evaluates instead."""

    crossfit: CrossFit

    def __new__(cls, train: ImageDataset, test: ImageDataset, crossfit: CrossFit
                ) -> CrossFitted:
        pair = super().__new__(cls, (train, test))
        pair.crossfit = crossfit
        return pair

    def __getnewargs__(self) -> tuple:  # copy / pickle
        return (self[0], self[1], self.crossfit)
