"""The in-memory container of the dense (per-pixel) tasks: segmentation and change detection."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..specs import UNITS

#: Mask value of pixels that carry no label (padding of tiled scenes); never scored.
IGNORE = -1
TASKS = ("segmentation", "change_detection")


@dataclass
class DenseDataset:
    """One split of a dense task, decoded into memory.

    Attributes:
        images: float32 ``(N, C, H, W)`` for segmentation, ``(N, 2, C, H, W)`` (two dates,
            earlier first) for change detection, in ``units``.
        masks: int64 ``(N, H, W)``: class index per pixel, :data:`IGNORE` (-1) = unlabelled.
        classes: class names; ``masks`` values lie in ``[0, len(classes))`` or are -1.
        bands: channel names (``"B01"`` … ``"B12"``, ``"B8A"``, others as stored).
        task: ``"segmentation"`` or ``"change_detection"``.
        paths: where each item came from (sample file, or ``city[y:y+t, x:x+t]`` tile).
    """

    name: str
    split: str
    images: torch.Tensor
    masks: torch.Tensor
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    units: str
    task: str
    synthetic: bool = False
    paths: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}")
        want = 4 if self.task == "segmentation" else 5
        if self.images.ndim != want or (want == 5 and self.images.shape[1] != 2):
            layout = "(N, C, H, W)" if want == 4 else "(N, 2, C, H, W)"
            raise ValueError(f"{self.name}: {self.task} images must be {layout}; got "
                             f"{tuple(self.images.shape)}")
        if self.masks.ndim != 3 or self.masks.dtype != torch.int64:
            raise ValueError(f"{self.name}: masks must be int64 (N, H, W); got "
                             f"{self.masks.dtype} {tuple(self.masks.shape)}")
        if self.masks.shape[0] != self.images.shape[0] or \
                self.masks.shape[-2:] != self.images.shape[-2:]:
            raise ValueError(f"{self.name}/{self.split}: images {tuple(self.images.shape)} and "
                             f"masks {tuple(self.masks.shape)} do not match")
        if self.images.shape[-3] != len(self.bands):
            raise ValueError(f"{self.name}/{self.split}: {self.images.shape[-3]} channels but "
                             f"{len(self.bands)} band names")
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}; got {self.units!r}")
        if len(self.masks):
            lo, hi = int(self.masks.min()), int(self.masks.max())
            if lo < IGNORE or hi >= len(self.classes):
                raise ValueError(f"{self.name}/{self.split}: mask values span [{lo}, {hi}] but "
                                 f"there are {len(self.classes)} classes (and -1 = ignore)")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def multilabel(self) -> bool:
        return False
