"""Redundancy metrics of frozen features ``(N, D)``: mean feature correlation, the PCA
spectrum and its EVR slope, effective dimensionality (participation ratio) and linear CKA.
See ``docs/evaluation.md``."""

from slimlib.metrics._redundancy import (
    DESCRIBE_KEYS,
    describe_features,
    evr_slope,
    explained_variance_ratio,
    linear_cka,
    mean_feature_correlation,
    participation_ratio,
)

__all__ = ["DESCRIBE_KEYS", "describe_features", "evr_slope", "explained_variance_ratio",
           "linear_cka", "mean_feature_correlation", "participation_ratio"]
