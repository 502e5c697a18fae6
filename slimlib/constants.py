"""The facts every slimlib module shares, written once (a leaf module: it imports only the standard library).

Other modules import these names (and the stages re-export the ones their users need, e.g.
``slimlib.measure.WIDTHS`` or ``slimlib.slimming.PARTS``); edit a value here and nowhere else.
The Sentinel-2 band table lives in :mod:`slimlib.bands`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "WIDTHS", "PARTS", "ORDERS", "SCALES", "PROTOCOLS",
    "REDUNDANCY_METRICS", "FEATURE_METRICS", "DESCRIBE_KEYS",
    "EMBEDDED_MODELS", "EMBEDDED_MODEL_NAMES", "EMBEDDED_FOLDERS",
    "DEFAULT_DATASET", "EMBEDDED_RS_DATASETS", "RS_FALLBACK", "CV_DATASETS", "CV_FALLBACK",
    "PAPER_CONVENTION", "LAYER_TYPE_MODELS",
]

#: The paper's 31 width factors (project page ``static/js/arch.js``).
WIDTHS: tuple[float, ...] = (
    0.001, 0.002, 0.0025, 0.00333, 0.004, 0.005, 0.006, 0.00667, 0.0075, 0.008,
    0.01, 0.02, 0.025, 0.0333, 0.04, 0.05, 0.06, 0.0667, 0.075, 0.08,
    0.1, 0.2, 0.25, 0.333, 0.4, 0.5, 0.6, 0.667, 0.75, 0.8, 1.0,
)

#: The paper's FLOP convention (fvcore: attention matmuls not counted, LayerNorms counted),
#: as keyword arguments of :func:`slimlib.flops` / :func:`slimlib.book.compute_table_cached`.
#: Its published relative compute follows it (tests/measure/test_compute.py checks SSL4EO ViT-S).
PAPER_CONVENTION: Mapping[str, bool] = MappingProxyType({"count_attention": False,
                                                          "count_norms": True})

#: Parts of a transformer block that :func:`slimlib.slim` can narrow, in canonical order.
PARTS: tuple[str, ...] = ("attn", "ffn")
#: Which units survive slimming: the first, the last, or a seeded random subset.
ORDERS: tuple[str, ...] = ("first", "last", "random")
#: Softmax scale of a slimmed head: ``1/sqrt(d_k')`` ("slimmed") or the original ``1/sqrt(d_k)``.
SCALES: tuple[str, ...] = ("slimmed", "original")
#: Probe protocols: k-NN (k=5, cosine) and a linear probe.
PROTOCOLS: tuple[str, ...] = ("knn", "linear")

#: Redundancy metrics of one feature matrix (:mod:`slimlib.metrics`).
REDUNDANCY_METRICS: tuple[str, ...] = ("mean_feature_correlation", "evr_slope",
                                       "participation_ratio")
#: Metrics a sweep writes as ``protocol="features"`` rows: the redundancy metrics of the test
#: features plus their linear CKA to the full-width features.
FEATURE_METRICS: tuple[str, ...] = REDUNDANCY_METRICS + ("cka_full",)
#: Keys of :func:`slimlib.metrics.describe_features`, in order: the redundancy metrics plus the
#: explained-variance ratio of the first principal component.
DESCRIBE_KEYS: tuple[str, ...] = REDUNDANCY_METRICS + ("explained_variance_first",)

#: slimlib's own tiny pretrained models: name -> (domain, method, slimmable).
EMBEDDED_MODELS: dict[str, tuple[str, str, bool]] = {
    "rs-moco-tiny": ("rs", "moco", False),
    "rs-moco-tiny-slimmable": ("rs", "moco", True),
    "rs-mae-tiny": ("rs", "mae", False),
    "rs-mae-tiny-slimmable": ("rs", "mae", True),
    "cv-moco-tiny": ("cv", "moco", False),
    "cv-mae-tiny": ("cv", "mae", False),
}
EMBEDDED_MODEL_NAMES: tuple[str, ...] = tuple(EMBEDDED_MODELS)

#: Folders under the data root that an embedded dataset reads (each with a ``manifest.csv``).
EMBEDDED_FOLDERS: dict[str, tuple[str, ...]] = {
    "eurosat-rgb": ("eurosat_rgb",), "eurosat-ms": ("eurosat_ms",), "ucmerced": ("ucmerced",),
    "cifar10": ("cifar10_train", "cifar10_test"),
}

#: The one "which data without explicit datasets" rule (:func:`slimlib.data.datasets_for_root`):
#: with a data root, these real datasets (the root must hold them); without one, the labelled
#: synthetic fallback.
DEFAULT_DATASET = "eurosat-rgb"
EMBEDDED_RS_DATASETS: tuple[str, ...] = ("eurosat-ms", "eurosat-rgb", "ucmerced")
RS_FALLBACK = "synthetic-ms"
CV_DATASETS: tuple[str, ...] = ("cifar10",)
CV_FALLBACK = "synthetic-rgb"

#: The models of the paper's layer-type ablation (attention-only / FFN-only floors; DOSSIER:
#: DOFA-L, TerraMind-L, Prithvi-600M): the architectures the parts-floor claims are about.
LAYER_TYPE_MODELS: tuple[str, ...] = ("dofa-large", "terramind-v1-large", "prithvi-eo-2-600m")
