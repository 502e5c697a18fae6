"""Sweep inputs: one canonical form (:class:`SweepData`, ``(name, loader)`` models) and the
explicit converters that build it from what :func:`slimlib.sweep` accepts.

Canonical datasets are a list of :class:`SweepData` (a name, train and test splits as
:class:`ImageDataset` or prepared ``(x, y)`` tensors). :func:`as_datasets` is the one place
that tells the accepted shapes apart and calls the converter for each:
:meth:`SweepData.from_registry` (a registry name), :meth:`SweepData.from_splits` (a
``(train, test)`` pair of :class:`ImageDataset`) and :meth:`SweepData.from_prepared` (a name
and ``((x_train, y_train), (x_test, y_test))``). :func:`as_models` does the same for models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from slimlib._validation import check_choice, check_int, check_parts, check_widths
from slimlib.constants import PARTS, PROTOCOLS
from slimlib.specs import ImageDataset, ModelSpec

__all__ = ["SweepData", "as_datasets", "as_models"]



@dataclass
class SweepData:
    """One dataset in the canonical form a sweep runs on.

    Attributes:
        name: the ``dataset`` column of its rows.
        train, test: :class:`ImageDataset` splits, or prepared ``(x, y)`` tensors
            (``x`` float ``(N, C, S, S)``, ``y`` ``(N,)`` or ``(N, K)``).
        synthetic, notes: from the splits (set by the converters).
        folds, fold_seed: ``folds > 0``: evaluated by ``folds``-fold cross-fitting over
            every image (:mod:`slimlib.probes`; ``train`` and ``test`` are then the same
            images); ``0``: the fixed train/test split.
        fp_train, fp_test, fp, metric: filled in by :func:`slimlib.sweep`.
    """

    name: str
    train: ImageDataset | tuple[torch.Tensor, torch.Tensor]
    test: ImageDataset | tuple[torch.Tensor, torch.Tensor]
    synthetic: bool = False
    fp_train: str = ""
    fp_test: str = ""
    fp: str = ""
    metric: str = ""
    notes: list[str] = field(default_factory=list)
    folds: int = 0
    fold_seed: int = 0

    def __post_init__(self) -> None:
        splits = (self.train, self.test)
        self.synthetic = self.synthetic or any(isinstance(s, ImageDataset) and s.synthetic
                                               for s in splits)
        if not self.notes:
            self.notes = [n for s in splits if isinstance(s, ImageDataset) for n in s.notes]

    @property
    def n_train(self) -> int:
        """Training images per probe (cross-fitted: the mean bank size of a fold)."""
        if self.folds:
            from slimlib.probes import bank_size

            return bank_size(self.fold_ids())
        return len(_labels_of(self.train))

    def fold_ids(self) -> Any:
        """The fold of each image (cross-fitted data only; :func:`slimlib.probes.fold_ids`)."""
        from slimlib.probes import fold_ids

        if not self.folds:
            raise ValueError(f"{self.name} is evaluated on a fixed split, not cross-fitted")
        return fold_ids(_labels_of(self.test), folds=self.folds, seed=self.fold_seed)

    @property
    def n_test(self) -> int:
        return len(_labels_of(self.test))

    @classmethod
    def from_registry(cls, dataset: str, *, name: str | None = None, train_split: str = "train",
                      test_split: str = "test", data_root: Any = None,
                      settings: Any = None) -> SweepData:
        """Load a :func:`slimlib.data.load` dataset's two splits."""
        from slimlib import data as _data

        return cls(name or dataset,
                   _data.load(dataset, train_split, root=data_root, settings=settings),
                   _data.load(dataset, test_split, root=data_root, settings=settings))

    @classmethod
    def from_splits(cls, train: ImageDataset, test: ImageDataset, *,
                    name: str | None = None) -> SweepData:
        """A ``(train, test)`` pair of :class:`ImageDataset` sharing one label space."""
        if tuple(train.classes) != tuple(test.classes) or train.multilabel != test.multilabel:
            raise ValueError(f"{train.name}: train and test splits must share one label space;"
                             f" got classes {train.classes} vs {test.classes}")
        return cls(name or train.name, train, test)

    @classmethod
    def crossfitted(cls, dataset: ImageDataset, *, folds: int = 5, seed: int = 0,
                    name: str | None = None) -> SweepData:
        """Every image of ``dataset``, evaluated by ``folds``-fold cross-fitting
        (:mod:`slimlib.probes`); ``seed`` draws the stratified folds."""
        from slimlib.probes import fold_ids, note

        fold_ids(dataset.labels, folds=folds, seed=seed)  # checks folds against the data
        return cls(name or dataset.name, dataset, dataset, folds=int(folds),
                   fold_seed=int(seed), notes=[*dataset.notes, note(folds, seed, len(dataset))])

    @classmethod
    def from_prepared(cls, name: str, train: tuple[Any, Any], test: tuple[Any, Any]
                      ) -> SweepData:
        """Prepared ``(x_train, y_train)``, ``(x_test, y_test)`` tensors under ``name``."""
        return cls(name, tuple(train), tuple(test))


def _labels_of(data: ImageDataset | tuple[Any, Any]) -> torch.Tensor:
    return data.labels if isinstance(data, ImageDataset) else torch.as_tensor(data[1])


def _is_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple | list) and len(obj) == 2
            and all(isinstance(o, ImageDataset) for o in obj))


def _is_prepared_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple | list) and len(obj) == 2
            and all(isinstance(o, tuple | list) and len(o) == 2 for o in obj))


def as_datasets(datasets: Any, *, train_split: str = "train", test_split: str = "test",
                data_root: Any = None, settings: Any = None) -> list[SweepData]:
    """The canonical list of :class:`SweepData` for what :func:`slimlib.sweep` accepts.

    Accepted: a :class:`SweepData` (or a list of them), a registry name, a ``(train, test)``
    pair of :class:`ImageDataset`, a list of names / pairs, or a dict name -> name / pair /
    prepared ``((x_train, y_train), (x_test, y_test))``. This is the one function that tells
    those shapes apart; each is built by its ``SweepData.from_*`` converter. A
    :class:`slimlib.probes.CrossFit` (or the :class:`~slimlib.probes.CrossFitted` pair
    :func:`slimlib.book.profiles.load_datasets` returns) becomes :meth:`SweepData.crossfitted`.
    """
    from slimlib.probes import CrossFit, CrossFitted

    if isinstance(datasets, str | SweepData | CrossFit) or _is_pair(datasets):
        datasets = [datasets]
    items = list(datasets.items()) if isinstance(datasets, Mapping) \
        else [(None, d) for d in datasets]
    if not items:
        raise ValueError("datasets must name at least one dataset")
    out = []
    for name, ds in items:
        if isinstance(ds, CrossFitted):
            ds = ds.crossfit
        if isinstance(ds, SweepData):
            out.append(ds)
        elif isinstance(ds, CrossFit):
            out.append(SweepData.crossfitted(ds.dataset, folds=ds.folds, seed=ds.seed,
                                             name=name))
        elif isinstance(ds, str):
            out.append(SweepData.from_registry(ds, name=name, train_split=train_split,
                                               test_split=test_split, data_root=data_root,
                                               settings=settings))
        elif _is_pair(ds):
            out.append(SweepData.from_splits(*ds, name=name))
        elif _is_prepared_pair(ds):
            if name is None:
                raise ValueError("prepared (x, y) pairs need a name: pass "
                                 "datasets={'name': ((x_train, y_train), (x_test, y_test))}")
            out.append(SweepData.from_prepared(name, ds[0], ds[1]))
        else:
            raise TypeError("each dataset must be a registry name, a (train, test) pair of "
                            f"ImageDataset, or name -> such a pair; got {type(ds).__name__}")
    return out


def as_models(models: Any, *, pretrained: Any = True, data_root: Any = None,
              settings: Any = None) -> list[tuple[str, Callable[[], nn.Module]]]:
    """The canonical ``[(name, loader)]`` for what :func:`slimlib.sweep` accepts: a registry
    name (loaded with :func:`slimlib.models.load`), a module with a ``.spec``, a list of
    those, or a dict name -> module / name. ``loader()`` returns the module. ``data_root``
    reaches the embedded (slimlib-pretrained) models, which pretrain on it."""
    if isinstance(models, str | nn.Module):
        models = [models]
    items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    if not items:
        raise ValueError("models must name at least one model")
    out = []
    for name, m in items:
        if isinstance(m, str):
            def load(ident: str = m) -> nn.Module:
                from slimlib import models as _models
                from slimlib.constants import EMBEDDED_MODEL_NAMES

                extra = ({"data_root": data_root}
                         if data_root is not None and ident in EMBEDDED_MODEL_NAMES else {})
                return _models.load(ident, pretrained=pretrained, settings=settings, **extra)
            out.append((name or m, load))
        elif isinstance(m, nn.Module):
            spec = getattr(m, "spec", None)
            label = name or (spec.name if isinstance(spec, ModelSpec) else None)
            if label is None:
                raise ValueError("a model passed as a module needs a name: use "
                                 "models={'name': module} or give it a .spec")
            out.append((label, lambda mod=m: mod))
        else:
            raise TypeError(f"each model must be a registry name or an nn.Module; got "
                            f"{type(m).__name__}")
    return out


def _check_seeds(seeds: Iterable[Any]) -> list[int]:
    values = list(seeds)
    if not values:
        raise ValueError("seeds must hold at least one non-negative int")
    for s in values:
        check_int(s, "seeds (each)", low=0)
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be unique; got {values}")
    return [int(s) for s in values]


def _check_protocols(protocols: Iterable[str]) -> list[str]:
    values = [protocols] if isinstance(protocols, str) else list(protocols)
    if not values:
        raise ValueError(f"protocols must hold at least one of {PROTOCOLS}")
    for p in values:
        check_choice(p, PROTOCOLS, "protocol")
    return list(dict.fromkeys(values))


def _check_parts(parts: Iterable[str]) -> str:
    """``parts`` checked (:func:`slimlib._validation.check_parts`) as the table's label,
    in canonical order: ``"attn+ffn"``."""
    values = check_parts(parts)
    return "+".join(p for p in PARTS if p in values)


def _dedupe_widths(widths: Iterable[Any]) -> list[float]:
    seen: dict[float, float] = {}
    for w in check_widths(widths):
        seen.setdefault(round(w, 9), w)
    return list(seen.values())
