"""CIEDE2000 statistics of patch-colour predictions, overall and broken down per camera and exposure.

One CIEDE2000 unit is about one just-noticeable difference, so next to the usual location statistics the
share of predictions below 1.0 says how often a prediction is indistinguishable from the truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["EXPOSURE_BINS", "de00_statistics", "exposure_bin", "patch_breakdown"]

#: Exposure bins by the offset from the camera meter's exposure, ``(Bv + 5) - EV100`` in EV
#: (:func:`tinct.io.exif.exposure_offset`): the harsh exposures are the outer two.
EXPOSURE_BINS: tuple[tuple[str, float, float], ...] = (
    ("under < -1 EV", -math.inf, -1.0),
    ("-1..+1 EV", -1.0, 1.0),
    ("over > +1 EV", 1.0, math.inf),
)


def de00_statistics(errors: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``de00_mean, de00_median, de00_p90, de00_max, share_below_1`` and ``n`` of per-sample CIEDE2000.

    Example:
        >>> s = de00_statistics([0.5, 1.5, 0.25, 2.0])
        >>> s["de00_mean"], s["de00_median"], s["share_below_1"]
        (1.0625, 1.0, 0.5)
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if e.size == 0:
        return {"n": 0}
    if not np.isfinite(e).all():
        raise ValueError(f"{int((~np.isfinite(e)).sum())} non-finite CIEDE2000 value(s)")
    return {
        "n": int(e.size),
        "de00_mean": float(e.mean()),
        "de00_median": float(np.median(e)),
        "de00_p90": float(np.percentile(e, 90)),
        "de00_max": float(e.max()),
        "share_below_1": float((e < 1.0).mean()),
    }


def exposure_bin(offset: float | None) -> str:
    """The :data:`EXPOSURE_BINS` label of an exposure offset in EV (``"unknown"`` for None / NaN)."""
    if offset is None or not math.isfinite(offset):
        return "unknown"
    for label, lo, hi in EXPOSURE_BINS:
        if lo <= offset < hi:
            return label
    return EXPOSURE_BINS[-1][0]


def patch_breakdown(table: pd.DataFrame, by: str, error: str = "de00") -> dict[str, dict[str, float]]:
    """:func:`de00_statistics` of ``table[error]`` per value of the column ``by`` (sorted by value)."""
    return {str(key): de00_statistics(group[error].to_numpy()) for key, group in table.groupby(by, sort=True)}
