"""Writing a :class:`~tinct.io.exif.meta.PhotoMeta` as a small, standard EXIF block, with Pillow's EXIF API.

:func:`exif_bytes` fills a ``PIL.Image.Exif`` (IFD0 tags directly, Exif-IFD tags through
``get_ifd(ExifTags.IFD.Exif)``) and returns ``Exif.tobytes()`` (big-endian TIFF) for
``PIL.Image.save(path, exif=...)``. Pillow picks each tag's TIFF type: the standard's for ASCII and
UNDEFINED tags, from the value for the others (``IFDRational`` >= 0: RATIONAL, < 0: SRATIONAL; an int below
65536: SHORT, else LONG).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from PIL.ExifTags import IFD, Base

from tinct.io.exif.meta import PhotoMeta

if TYPE_CHECKING:
    from PIL.TiffImagePlugin import IFDRational

__all__ = ["exif_bytes"]


def _rational(x: float, field: str) -> IFDRational:
    """``x`` as a rational that fits EXIF's 32-bit fields, denominator up to 10**6 (1/60 stays 1/60)."""
    from PIL.TiffImagePlugin import IFDRational

    if not math.isfinite(x):
        raise ValueError(f"{field} must be finite, got {x}")
    limit = max(1, min(1_000_000, (2**31 - 1) // (int(abs(x)) + 1)))
    f = Fraction(x).limit_denominator(limit)
    if abs(f.numerator) > 2**31 - 1:
        raise ValueError(f"{field} {x} does not fit in an EXIF rational")
    if f == -1:
        # -1/1 is the "unknown" marker of BrightnessValue; Pillow writes an IFDRational's terms as given
        return IFDRational(-2, 2)
    return IFDRational(f.numerator, f.denominator)


def exif_bytes(
    meta: PhotoMeta, *, make: str | None = None, model: str | None = None, software: str = "tinct"
) -> bytes:
    """An EXIF block holding ``meta``, for ``PIL.Image.save(path, exif=...)`` (JPEG, PNG, WebP, TIFF).

    IFD0 holds Make, Model and Software; the Exif IFD holds ExifVersion (``0232``), ExposureTime and
    FNumber, PhotographicSensitivity (0x8827, an int; above 65534 it holds 65535 and the value goes to
    ISOSpeed, with SensitivityType 3), BrightnessValue (APEX), ShutterSpeedValue (APEX ``Tv = -log2 t``) and
    ApertureValue (APEX ``Av = 2 log2 N``). Fields that are None are left out. Rationals are
    ``Fraction(x).limit_denominator(...)`` with denominators up to 10**6, so 1/60 s is stored as 1/60; a
    value of -1 is stored as -2/2, since -1/1 is BrightnessValue's "unknown" marker.

    Args:
        meta: the values to write.
        make: the Make tag (default: none).
        model: the Model tag (default: ``meta.camera`` when ``make`` is None too).
        software: the Software tag.

    Returns:
        ``b"Exif\\0\\0"`` followed by a big-endian TIFF structure.

    Raises:
        ValueError: an exposure time, ISO or f-number that is not positive and finite.

    Example:
        >>> import io
        >>> from PIL import ExifTags, Image
        >>> buf = io.BytesIO()
        >>> meta = PhotoMeta(exposure_time=1 / 60, iso=400, f_number=2.8, brightness=-1.25)
        >>> Image.new("RGB", (8, 8)).save(buf, "JPEG", exif=exif_bytes(meta, make="Canon", model="EOS R5"))
        >>> exif = Image.open(buf).getexif().get_ifd(ExifTags.IFD.Exif)
        >>> exposure = exif[ExifTags.Base.ExposureTime]
        >>> (exposure.numerator, exposure.denominator), float(exif[ExifTags.Base.FNumber])
        ((1, 60), 2.8)
        >>> exif[ExifTags.Base.ISOSpeedRatings], float(exif[ExifTags.Base.BrightnessValue])
        (400, -1.25)
    """
    from PIL import Image

    for name in ("exposure_time", "iso", "f_number"):
        value = getattr(meta, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if make is None and model is None:
        model = meta.camera
    exif = Image.Exif()
    for tag, text in ((Base.Make, make), (Base.Model, model), (Base.Software, software)):
        if text:
            exif[tag] = text
    sub = exif.get_ifd(IFD.Exif)
    sub[Base.ExifVersion] = b"0232"
    if meta.exposure_time is not None:
        sub[Base.ExposureTime] = _rational(meta.exposure_time, "exposure_time")
        sub[Base.ShutterSpeedValue] = _rational(-math.log2(meta.exposure_time), "ShutterSpeedValue")
    if meta.f_number is not None:
        sub[Base.FNumber] = _rational(meta.f_number, "f_number")
        sub[Base.ApertureValue] = _rational(2.0 * math.log2(meta.f_number), "ApertureValue")
    if meta.iso is not None:
        iso = max(1, round(meta.iso))
        sub[Base.ISOSpeedRatings] = min(iso, 65535)
        if iso >= 65535:
            sub[Base.SensitivityType] = 3  # ISO speed
            sub[Base.ISOSpeed] = min(iso, 2**32 - 1)
    if meta.brightness is not None:
        sub[Base.BrightnessValue] = _rational(meta.brightness, "brightness")
    return exif.tobytes()
