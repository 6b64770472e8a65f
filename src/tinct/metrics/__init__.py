"""Functional metrics and their statistics."""

from tinct.metrics.colorization import (
    AUC_MAX_THRESHOLD,
    ABAccuracy,
    ab_auc,
    ab_errors,
    colorfulness,
    grayscale_from_lab,
    pixel_rebalancing_weights,
    psnr,
    semantic_interpretability,
)
from tinct.metrics.statistics import STAT_NAMES, error_statistics

__all__ = [
    "AUC_MAX_THRESHOLD",
    "ABAccuracy",
    "ab_auc",
    "ab_errors",
    "colorfulness",
    "grayscale_from_lab",
    "pixel_rebalancing_weights",
    "psnr",
    "semantic_interpretability",
    "STAT_NAMES",
    "error_statistics",
]
