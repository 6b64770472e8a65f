"""The summary statistics of an error distribution used by the colour-constancy community.

Mean, median, trimean, best 25 % and worst 25 %, computed the way the FC4 / CLCC evaluation code does,
so numbers are comparable with published tables:

- quartiles Q1, Q2, Q3 by linear interpolation between order statistics (``numpy.percentile``'s default);
- trimean = (Q1 + 2 Q2 + Q3) / 4 (Tukey);
- best 25 % = mean of the ``floor(n / 4)`` smallest errors, worst 25 % = mean of the errors from sorted index
  ``floor(3 n / 4)`` on (so ``n - floor(3 n / 4)`` values). For n < 4 the best 25 % uses the single smallest
  error, so every statistic is defined for any n >= 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

__all__ = ["STAT_NAMES", "error_statistics", "paired_bootstrap_ci"]

STAT_NAMES = ("mean", "median", "trimean", "best25", "worst25")


def error_statistics(errors: Tensor | np.ndarray | Sequence[float]) -> dict[str, float]:
    """Mean, median, trimean, best 25 % and worst 25 % (and max, n) of a 1-D set of errors.

    Example:
        >>> s = error_statistics([1.0, 2.0, 3.0, 4.0])
        >>> s["mean"], s["median"], s["trimean"], s["best25"], s["worst25"]
        (2.5, 2.5, 2.5, 1.0, 4.0)
    """
    if isinstance(errors, Tensor):
        errors = errors.detach().cpu().double().numpy()
    e = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    n = e.size
    if n == 0:
        raise ValueError("error_statistics: no errors given")
    if not np.isfinite(e).all():
        raise ValueError(f"error_statistics: {int((~np.isfinite(e)).sum())} of {n} errors are NaN or inf")
    q1, q2, q3 = np.percentile(e, [25, 50, 75])
    return {
        "mean": float(e.mean()),
        "median": float(q2),
        "trimean": float((q1 + 2 * q2 + q3) / 4),
        "best25": float(e[: max(1, n // 4)].mean()),
        "worst25": float(e[(3 * n) // 4 :].mean()),
        "max": float(e[-1]),
        "n": n,
    }


def paired_bootstrap_ci(
    correct: np.ndarray,
    reference: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(correct - reference)``, photos resampled in pairs (no
    ``reference``: the interval of ``mean(correct)``).

    The same seed draws the same resamples for any pair of arrays of one length, so the intervals of
    several versions against one reference come from the same resampled photo sets.

    Args:
        correct, reference: per-photo scores (1 / 0 for a correct / wrong prediction, or means over
            seeds) of two models or versions of the same photos, in the same order.
        n_boot: resamples.
        seed: seed of the resampling.
        level: coverage of the interval.

    Returns:
        ``(low, high)``; NaNs for no photos.

    Example:
        >>> paired_bootstrap_ci(np.array([1, 1, 0, 1]), np.array([1, 1, 0, 1]))
        (0.0, 0.0)
    """
    diff = np.asarray(correct, dtype=np.float64)
    if reference is not None:
        diff = diff - np.asarray(reference, dtype=np.float64)
    n = len(diff)
    if n == 0 or n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)  # bounded memory for many photos
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
