"""Functional metrics and their statistics."""

from tinct.metrics.statistics import STAT_NAMES, error_statistics

__all__ = ["STAT_NAMES", "error_statistics"]
