"""Measuring models: exact test bpd and likelihood classification, the sample metrics (FID, Coverage,
Density, the recognisable share, label reliability) on the oracle's or Inception's features, the
oracle itself, result files written with what measured them, and pictures of a run.

Modules: bpd, features, inception, metrics, oracle, plots, results. Its public names are exported lazily (importing
the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .bpd import classify_logits, evaluate_bpd, evaluate_classification
    from .features import coverage, coverage_density, density, fid, frechet_distance, gaussian_stats, knn_radii
    from .inception import (
        InceptionFeatures,
        inception_net,
        inception_weights_path,
        load_inception_state_dict,
        require_inception_weights,
    )
    from .metrics import (
        compute_features,
        dataset_features,
        evaluate_samples,
        evaluate_samples_over_seeds,
        get_feature_extractor,
        label_reliability,
        oracle_confidence,
        recognisable_share,
    )
    from .oracle import (
        OracleNet,
        default_oracle,
        find_oracle,
        load_oracle,
        oracle_accuracy,
        random_affine,
        train_oracle,
    )
    from .plots import save_figure, write_curve
    from .results import mean_sd, measured_sampler_options, provenance, source_commit, summarize, write_result

_LAZY = {
    "InceptionFeatures": "inception", "OracleNet": "oracle", "classify_logits": "bpd", "compute_features": "metrics",
    "coverage": "features", "coverage_density": "features", "dataset_features": "metrics",
    "default_oracle": "oracle", "density": "features", "evaluate_bpd": "bpd", "evaluate_classification": "bpd",
    "evaluate_samples": "metrics", "evaluate_samples_over_seeds": "metrics", "fid": "features",
    "find_oracle": "oracle", "frechet_distance": "features", "gaussian_stats": "features",
    "get_feature_extractor": "metrics", "inception_net": "inception", "inception_weights_path": "inception",
    "knn_radii": "features", "label_reliability": "metrics", "load_inception_state_dict": "inception",
    "load_oracle": "oracle", "mean_sd": "results", "measured_sampler_options": "results",
    "oracle_accuracy": "oracle", "oracle_confidence": "metrics", "provenance": "results", "random_affine": "oracle",
    "recognisable_share": "metrics", "require_inception_weights": "inception", "save_figure": "plots",
    "source_commit": "results", "summarize": "results", "train_oracle": "oracle", "write_curve": "plots",
    "write_result": "results",
}
__all__ = [
    "InceptionFeatures", "OracleNet", "classify_logits", "compute_features", "coverage", "coverage_density",
    "dataset_features", "default_oracle", "density", "evaluate_bpd", "evaluate_classification", "evaluate_samples",
    "evaluate_samples_over_seeds", "fid", "find_oracle", "frechet_distance", "gaussian_stats",
    "get_feature_extractor", "inception_net", "inception_weights_path", "knn_radii", "label_reliability",
    "load_inception_state_dict", "load_oracle", "mean_sd", "measured_sampler_options", "oracle_accuracy",
    "oracle_confidence", "provenance", "random_affine", "recognisable_share", "require_inception_weights",
    "save_figure", "source_commit", "summarize", "train_oracle", "write_curve", "write_result",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
