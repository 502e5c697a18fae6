"""Dense tasks: segmentation and change-detection probes on frozen (slimmed) encoders.

Patch-token maps from several blocks (``_head``) feed a light multi-scale head; the sweep
(``_sweep``) scores it per width with mIoU. See ``docs/dense.md``.
"""

from slimlib.dense._head import DenseHead, token_maps, train_head
from slimlib.dense._sweep import (
    DENSE_TASKS,
    IGNORE,
    DenseDataset,
    availability,
    confusion_matrix,
    dense_features,
    iou_per_class,
    miou,
    probe,
    sweep_dense,
)

__all__ = ["DENSE_TASKS", "IGNORE", "DenseDataset", "availability", "confusion_matrix",
           "dense_features", "iou_per_class", "miou", "probe", "sweep_dense", "DenseHead",
           "token_maps", "train_head"]
