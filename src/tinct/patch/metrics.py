"""CIEDE2000 statistics of patch-colour predictions, overall and broken down per camera and exposure.

One CIEDE2000 unit is about one just-noticeable difference, so next to the usual location statistics the
share of predictions below 1.0 says how often a prediction is indistinguishable from the truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from tinct.engine.statistics import error_statistics

__all__ = ["EXPOSURE_BINS", "de00_epoch_statistics", "de00_statistics", "exposure_bin", "patch_breakdown"]

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


def de00_epoch_statistics(errors: Tensor | Sequence[float] | np.ndarray) -> dict[str, float]:
    """What the patch task logs per validation / test epoch: the constancy statistics of
    :func:`tinct.engine.statistics.error_statistics` as ``de00_mean, de00_median, de00_trimean,
    de00_best25, de00_worst25, de00_max``, plus ``de00_p90`` and ``share_below_1`` of
    :func:`de00_statistics`, and ``n``.

    Raises:
        ValueError: no errors, or NaN / inf among them (saying how many).

    Example:
        >>> s = de00_epoch_statistics([0.5, 1.5, 0.25, 2.0])
        >>> s["de00_mean"], s["de00_trimean"], s["share_below_1"], s["n"]
        (1.0625, 1.015625, 0.5, 4)
    """
    if isinstance(errors, Tensor):
        errors = errors.detach().cpu().double().numpy()
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    stats = error_statistics(e)  # refuses no errors and NaN / inf, saying how many
    n = stats.pop("n")
    return {
        **{f"de00_{k}": v for k, v in stats.items()},
        "de00_p90": float(np.percentile(e, 90)),
        "share_below_1": float((e < 1.0).mean()),
        "n": n,
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
