r"""Normalised camera metadata (:class:`PhotoMeta`) and the APEX relations between its fields.

APEX relations (ASA PH2.5-1960; the APEX annex of EXIF 2.32, CIPA DC-008-2019):
:math:`A_v + T_v = B_v + S_v` with :math:`A_v = 2\log_2 N`, :math:`T_v = -\log_2 t` and
:math:`S_v = \log_2(\mathrm{ISO} / 3.125)`. The exposure value referred to ISO 100 is

.. math::
    EV_{100} = \log_2(N^2 / t) - \log_2(\mathrm{ISO} / 100),

and since :math:`S_v(\mathrm{ISO}\ 100) = \log_2(100 / 3.125) = 5`, a correctly metered scene has
:math:`B_v = EV_{100} - 5`; tinct's synthetic generator writes Bv by this relation.
:func:`exposure_offset` is the difference :math:`(B_v + 5) - EV_{100}` in stops: positive when the scene is
brighter than the camera settings were chosen for, i.e. the image is overexposed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["PhotoMeta", "exposure_offset"]


@dataclass(frozen=True)
class PhotoMeta:
    """Normalised camera metadata of one photo; every field may be unknown (None).

    Attributes:
        exposure_time: exposure time in seconds, > 0.
        iso: ISO speed (sensitivity), > 0.
        f_number: f-number N, > 0.
        brightness: APEX brightness value Bv as stored by the camera (log2 units, about -20 to 30).
        camera: ``"Make Model"``.

    Example:
        >>> meta = PhotoMeta(exposure_time=1 / 60, iso=400, f_number=2.8)
        >>> round(meta.ev100, 4)  # log2(2.8**2 * 60) - log2(4)
        6.8777
    """

    exposure_time: float | None = None
    iso: float | None = None
    f_number: float | None = None
    brightness: float | None = None
    camera: str | None = None

    @property
    def ev100(self) -> float | None:
        """Exposure value at ISO 100: ``log2(N^2 / t) - log2(ISO / 100)``; None if any of the three is missing."""
        if self.exposure_time is None or self.iso is None or self.f_number is None:
            return None
        return math.log2(self.f_number**2 / self.exposure_time) - math.log2(self.iso / 100.0)

    def as_dict(self) -> dict[str, float | str | None]:
        """The fields plus ``ev100``, as a plain dict."""
        return {**asdict(self), "ev100": self.ev100}


def exposure_offset(meta: PhotoMeta) -> float | None:
    """How many stops brighter the image is than the meter wanted: ``(Bv + 5) - EV100``.

    Args:
        meta: the photo's metadata.

    Returns:
        The offset in stops (0 for a correctly metered scene, positive = overexposed), or None when the
        brightness or any of exposure time, ISO, f-number is unknown.

    Example:
        >>> exposure_offset(PhotoMeta(exposure_time=1 / 64, iso=100, f_number=2.0, brightness=3.0))
        0.0
    """
    ev = meta.ev100
    if ev is None or meta.brightness is None:
        return None
    return (meta.brightness + 5.0) - ev
