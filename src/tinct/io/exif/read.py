r"""Reading camera metadata from EXIF or JSON and normalising it to a :class:`~tinct.io.exif.meta.PhotoMeta`.

Makers disagree on how they store exposure, so every source goes through :func:`normalize_meta`, which
returns a :class:`PhotoMeta` in fixed units. The rules, in order of precedence per field:

- **Keys.** EXIF tag names (``ExposureTime``, ``ShutterSpeedValue``, ``FNumber``, ``ApertureValue``,
  ``PhotographicSensitivity``/``ISOSpeedRatings``, ``ISOSpeed``, ``RecommendedExposureIndex``,
  ``BrightnessValue``, ``Make``, ``Model``; exiftool's ``ISO`` and ``Group:Tag`` names are accepted too) or
  tinct's own keys (``exposure_time``, ``iso``, ``f_number``, ``brightness``, ``camera``), which win when
  both are present.
- **Values.** Numbers, Pillow ``IFDRational``, ``Fraction``, ``(num, den)`` pairs for rational tags,
  strings (``"1/60"``, ``"0.5"``), or lists (the first element, e.g. an ISO stored as ``(400,)``). A
  rational with a zero denominator is EXIF's "unknown" and reads as missing.
- **Exposure time** (seconds). ``ExposureTime`` wins. Otherwise ``ShutterSpeedValue`` is read as APEX
  :math:`T_v` and :math:`t = 2^{-T_v}`, *except* when it is clearly seconds, i.e. written as a fraction
  ``1/n`` with ``n > 1`` (the string ``"1/60"``, ``IFDRational(1, 60)``, ``(1, 60)``): some makers and
  tools (exiftool's print conversion) store the shutter speed in seconds there.
- **F-number.** ``FNumber`` wins, else ``ApertureValue`` as APEX :math:`A_v` and :math:`N = 2^{A_v/2}`.
- **ISO.** The first known of ``PhotographicSensitivity``/``ISOSpeedRatings`` (tag 0x8827), ``ISOSpeed``,
  ``RecommendedExposureIndex``; 0 and 65535 mean "unknown" (65535 is also what 0x8827 holds when the
  sensitivity does not fit in 16 bits, and the real value is in ``ISOSpeed``).
- **Brightness** (APEX :math:`B_v`, as stored). The "unknown" marker (numerator 0xFFFFFFFF, i.e. -1 read as
  a signed rational ``-1/1``; or the number 4294967295) is dropped silently. Values outside [-20, 30]
  (starlight to far beyond the sun on snow) or not finite are dropped with a warning naming the source:
  some makers store BrightnessValue on other scales.
- **Camera.** ``"Make Model"``; the model alone when it already starts with the make (or with the make's
  first word: ``NIKON CORPORATION`` + ``NIKON D750`` gives ``NIKON D750``).
- **Errors.** A non-positive or non-finite exposure time, ISO or f-number, or a value that is not a number,
  raises :class:`~tinct.core.exceptions.DataError` naming the source and the field.

The APEX relations between the fields are in :mod:`tinct.io.exif.meta`. EXIF is read with Pillow only
(``Image.getexif`` reads the APP1 segment without decoding pixels).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL.ExifTags import IFD, Base

from tinct.core.exceptions import DataError
from tinct.io.exif.meta import PhotoMeta

__all__ = [
    "BRIGHTNESS_RANGE",
    "exif_tags",
    "normalize_meta",
    "photo_meta",
    "read_exif_meta",
    "read_json_meta",
]

BRIGHTNESS_RANGE = (-20.0, 30.0)

# EXIF tags read by read_exif_meta (IFD0 and Exif IFD, CIPA DC-008-2019 tables 4 and 7) -> tinct's key names.
_IFD0_TAGS = {Base.Make: "Make", Base.Model: "Model"}
_EXIF_TAGS = {
    Base.ExposureTime: "ExposureTime",
    Base.FNumber: "FNumber",
    Base.ISOSpeedRatings: "PhotographicSensitivity",  # 0x8827, renamed in EXIF 2.3
    Base.RecommendedExposureIndex: "RecommendedExposureIndex",
    Base.ISOSpeed: "ISOSpeed",
    Base.ShutterSpeedValue: "ShutterSpeedValue",
    Base.ApertureValue: "ApertureValue",
    Base.BrightnessValue: "BrightnessValue",
}
_ISO_KEYS = ("PhotographicSensitivity", "ISOSpeedRatings", "ISO", "ISOSpeed", "RecommendedExposureIndex")
_UNKNOWN_ISO = (0.0, 65535.0)
_UNKNOWN_U32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------- parsing


def _is_rational(value: Any) -> bool:
    return hasattr(value, "numerator") and hasattr(value, "denominator") and not isinstance(value, int)


def _pair(value: Any) -> tuple[Any, Any] | None:
    """(numerator, denominator) of a rational-looking value, or None."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+]?\d+)\s*/\s*([-+]?\d+)\s*", value)
        return (int(m.group(1)), int(m.group(2))) if m else None
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    if _is_rational(value):
        return value.numerator, value.denominator
    return None


def _number(value: Any, field: str, source: str, *, rational: bool = True) -> float | None:
    """A float from any EXIF-ish value; None for missing / x/0; DataError for what is not a number."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, (tuple, list)) and not (rational and _pair(value) is not None):
        return _number(value[0], field, source, rational=rational) if len(value) else None
    pair = _pair(value) if rational or not isinstance(value, (tuple, list)) else None
    if pair is not None:
        num, den = pair
        return None if den == 0 else float(Fraction(int(num), int(den)))
    if isinstance(value, bool):
        raise DataError(f"{source}: {field} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{source}: {field} must be a number, got {value!r}") from None


def _positive(value: float | None, field: str, source: str) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise DataError(f"{source}: {field} must be a positive finite number, got {value}")
    return value


def _is_seconds_fraction(value: Any) -> bool:
    """True for a ShutterSpeedValue written as ``1/n`` with n > 1 (seconds, not APEX)."""
    pair = _pair(value)
    return pair is not None and int(pair[0]) == 1 and int(pair[1]) > 1


def _is_unknown_brightness(value: Any) -> bool:
    pair = _pair(value)
    if pair is not None:
        num, den = int(pair[0]), int(pair[1])
        return num == _UNKNOWN_U32 or (num == -1 and den in (1, -1, _UNKNOWN_U32))
    try:
        return float(value) == _UNKNOWN_U32
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = " ".join(str(value).replace("\x00", " ").split())
    return text or None


def _camera_name(make: str | None, model: str | None) -> str | None:
    if make and model:
        m, first = model.lower(), make.split()[0].lower()
        return model if m.startswith(make.lower()) or m.startswith(first) else f"{make} {model}"
    return model or make


def normalize_meta(raw: Mapping[str, Any], source: str) -> PhotoMeta:
    """Normalise EXIF-style or tinct-style metadata to seconds, ISO, f-number and APEX Bv.

    The rules (which tag wins, APEX fallbacks, unknown markers) are in the module docstring.

    Args:
        raw: tag name -> value (EXIF tag names or tinct's keys; ``Group:Tag`` names are accepted).
        source: what the values came from (a file name), for messages.

    Returns:
        The normalised metadata; fields without a usable value are None.

    Raises:
        DataError: a value is not a number, or an exposure time, ISO or f-number is not positive and finite.

    Example:
        >>> normalize_meta({"ShutterSpeedValue": 6, "ApertureValue": 2, "ISOSpeedRatings": (200,)}, "x.jpg")
        PhotoMeta(exposure_time=0.015625, iso=200.0, f_number=2.0, brightness=None, camera=None)
    """
    tags = {str(k).rsplit(":", 1)[-1]: v for k, v in raw.items()}

    def get(key: str, *, rational: bool = True) -> float | None:
        return _number(tags.get(key), key, source, rational=rational)

    exposure = get("exposure_time")
    if exposure is None:
        exposure = get("ExposureTime")
    if exposure is None and tags.get("ShutterSpeedValue") is not None:
        tv_raw = tags["ShutterSpeedValue"]
        tv = get("ShutterSpeedValue")
        if tv is not None:
            if _is_seconds_fraction(tv_raw):
                exposure = tv
            elif math.isfinite(tv):
                exposure = 2.0**-tv
            else:
                exposure = tv
    field = "exposure_time" if tags.get("exposure_time") is not None else "ExposureTime/ShutterSpeedValue"
    exposure = _positive(exposure, field, source)

    f_number = get("f_number")
    field = "f_number"
    if f_number is None:
        f_number, field = get("FNumber"), "FNumber"
    if f_number is None:
        av = get("ApertureValue")
        f_number, field = (
            (None if av is None else 2.0 ** (av / 2.0) if math.isfinite(av) else av),
            "ApertureValue",
        )
    f_number = _positive(f_number, field, source)

    iso = None
    for key in ("iso", *_ISO_KEYS):
        value = get(key, rational=False)
        if value is None or value in _UNKNOWN_ISO:
            continue
        iso = _positive(value, key, source)
        break

    brightness = None
    for key in ("brightness", "BrightnessValue"):
        value = tags.get(key)
        if value is None or _is_unknown_brightness(value):
            continue
        bv = _number(value, key, source)
        if bv is None:
            continue
        lo, hi = BRIGHTNESS_RANGE
        if not (math.isfinite(bv) and lo <= bv <= hi):
            warnings.warn(
                f"{source}: {key} {bv} is outside the APEX range [{lo:g}, {hi:g}] (another maker scale?); ignored",
                stacklevel=2,
            )
            continue
        brightness = bv
        break

    camera = _text(tags.get("camera")) or _camera_name(_text(tags.get("Make")), _text(tags.get("Model")))
    return PhotoMeta(exposure, iso, f_number, brightness, camera)


# ---------------------------------------------------------------------------------------------- reading


def read_exif_meta(path: str | os.PathLike[str]) -> PhotoMeta:
    """The metadata in an image file's EXIF (Pillow; pixels are not decoded for JPEG and TIFF).

    Args:
        path: an image file.

    Returns:
        The normalised metadata; all None when the file has no EXIF.

    Raises:
        DataError: the file is missing or Pillow cannot read it (named), or a value is invalid.
    """
    p = Path(path)
    raw = exif_tags(p)
    return normalize_meta(raw, str(p))


def exif_tags(p: Path) -> dict[str, Any]:
    """Tag name -> raw value of the EXIF tags tinct reads; DataError naming ``p`` when unreadable."""
    from PIL import Image

    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        with Image.open(p) as im:
            exif = im.getexif()
            sub = exif.get_ifd(IFD.Exif)
            # TIFF files may keep Exif tags in IFD0 itself
            raw = {name: exif[tag] for tag, name in {**_IFD0_TAGS, **_EXIF_TAGS}.items() if tag in exif}
            raw.update({name: sub[tag] for tag, name in _EXIF_TAGS.items() if tag in sub})
    except Exception as err:  # Pillow raises many types for corrupt files and EXIF blocks
        raise DataError(f"{p}: cannot read image or its EXIF ({err})") from err
    return raw


def read_json_meta(path: str | os.PathLike[str]) -> PhotoMeta:
    """The metadata in a JSON file of EXIF tags (a JSON object, or exiftool's one-object list).

    Args:
        path: the JSON file; keys are EXIF tag names or tinct's keys (see :func:`normalize_meta`).

    Returns:
        The normalised metadata.

    Raises:
        DataError: the file is missing, not JSON, not an object, or holds an invalid value (file named).
    """
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{p}: not a valid JSON file of EXIF tags ({err})") from err
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        raise DataError(f"{p}: expected a JSON object of EXIF tags, got {type(obj).__name__}")
    return normalize_meta(obj, str(p))


def photo_meta(image_path: str | os.PathLike[str]) -> PhotoMeta:
    """The metadata of a photo: from ``<stem>.json`` beside it if present, else from its EXIF.

    Args:
        image_path: the image file.

    Returns:
        The normalised metadata.

    Raises:
        DataError: unreadable image or JSON file (named), or an invalid value.
    """
    p = Path(image_path)
    side = p.with_name(p.stem + ".json")
    return read_json_meta(side) if side.is_file() else read_exif_meta(p)
