"""Where the pretraining loop's batches come from, and what it learns about its data first.

:class:`TensorSource` (an in-memory image tensor) and :class:`LoaderSource` (a map-style
``Dataset`` through a ``DataLoader``) yield the batch of step ``t`` from a permutation seeded
with :func:`mix_seed`, so a resumed run sees the same batches. :func:`data_fingerprint`,
:func:`channel_stats` and :func:`in_chans_of` read the training data for
:func:`slimlib.train.loop.pretrain`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["TensorSource", "LoaderSource", "mix_seed", "collate_images", "images_of",
           "data_fingerprint", "channel_stats", "in_chans_of"]


def mix_seed(seed: int, step: int) -> int:
    """A 63-bit seed for (run seed, step) pairs."""
    digest = hashlib.blake2b(f"{seed}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class TensorSource:
    """Batches from an in-memory ``(N, C, H, W)`` tensor, one permutation per epoch."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int) -> None:
        self.images = images
        self.n = int(images.shape[0])
        self.batch_size = min(batch_size, self.n)
        self.seed = seed
        self.steps_per_epoch = max(1, self.n // self.batch_size)

    def indices(self, step: int) -> torch.Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = torch.randperm(self.n,
                              generator=torch.Generator().manual_seed(mix_seed(self.seed, -1 - epoch)))
        return perm[pos * self.batch_size:(pos + 1) * self.batch_size]

    def batches(self, start: int) -> Iterator[torch.Tensor]:
        step = start
        while True:
            yield self.images[self.indices(step)]
            step += 1


class LoaderSource(TensorSource):
    """Batches from a map-style ``Dataset`` through a ``DataLoader`` (workers decode)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, num_workers: int) -> None:
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        self.batch_size = min(batch_size, self.n)
        self.seed = seed
        self.num_workers = num_workers
        self.steps_per_epoch = max(1, self.n // self.batch_size)

    def batches(self, start: int) -> Iterator[torch.Tensor]:
        step = start
        while True:
            epoch, pos = divmod(step, self.steps_per_epoch)
            order = [self.indices(epoch * self.steps_per_epoch + p)
                     for p in range(pos, self.steps_per_epoch)]
            loader = DataLoader(self.dataset, batch_sampler=[o.tolist() for o in order],
                                num_workers=self.num_workers, collate_fn=collate_images,
                                pin_memory=torch.cuda.is_available(),
                                persistent_workers=False)
            for batch in loader:
                yield batch
                step += 1


def collate_images(items: list[Any]) -> torch.Tensor:
    images = [item[0] if isinstance(item, tuple | list) else item for item in items]
    return torch.stack([torch.as_tensor(im, dtype=torch.float32) for im in images])


def images_of(data: Any) -> torch.Tensor | None:
    if isinstance(data, torch.Tensor):
        return data
    images = getattr(data, "images", None)
    return images if isinstance(images, torch.Tensor) else None


def data_fingerprint(data: Any) -> str:
    """16 hex digits of :func:`slimlib.features.data_fingerprint` (the one algorithm) of the
    training data: an ImageDataset, an image tensor or a folder dataset (``.samples``)."""
    from slimlib.features import data_fingerprint as fingerprint
    from slimlib.specs import ImageDataset

    images = images_of(data)
    if images is None and not (getattr(data, "samples", None) or getattr(data, "paths", None)):
        raise ValueError("cannot fingerprint this dataset: give an ImageDataset, a tensor or "
                         "a dataset with .samples/.paths")
    return fingerprint(data if isinstance(data, ImageDataset) or images is None else images,
                       digits=16)


def channel_stats(data: Any, source: TensorSource) -> tuple[list[float], list[float]]:
    images = images_of(data)
    if images is None:  # sample up to 512 items of a dataset
        idx = torch.linspace(0, source.n - 1, min(512, source.n)).long().tolist()
        images = collate_images([data[i] for i in idx])
    elif images.shape[0] > 4096:
        images = images[torch.linspace(0, images.shape[0] - 1, 4096).long()]
    x = images.double().transpose(0, 1).reshape(images.shape[1], -1)
    std = x.std(dim=1).clamp_min(1e-6)
    return x.mean(dim=1).tolist(), std.tolist()


def in_chans_of(data: Any) -> int:
    images = images_of(data)
    if images is not None:
        return int(images.shape[1])
    first = data[0]
    first = first[0] if isinstance(first, tuple | list) else first
    return int(torch.as_tensor(first).shape[0])
