"""The pixel limit of :func:`tinct.io.image.read_image`: a larger image is refused from its header, before
anything is decoded (a small file can claim 20000 x 20000 pixels and need gigabytes to decode).

Both names are re-exported by :mod:`tinct.io.image`, where they are documented for users; they live here
so that the decoders (:mod:`tinct.io.decode`) can check the limit without importing the public module.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from tinct.core.exceptions import ConfigError, DataError

__all__ = ["MAX_PIXELS_ENV", "check_max_pixels", "check_pixels", "max_pixels"]

#: Environment variable holding the largest image (width x height, in pixels) :func:`read_image` decodes.
MAX_PIXELS_ENV = "TINCT_MAX_PIXELS"

_PILLOW_MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS as shipped, if a program set it to None


def max_pixels() -> int:
    """The default pixel limit of :func:`read_image`: ``$TINCT_MAX_PIXELS`` if set, else Pillow's.

    Pillow's limit is its decompression-bomb error threshold, ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (about
    179 million pixels, e.g. 16400 x 10900).

    Raises:
        ConfigError: ``TINCT_MAX_PIXELS`` is set but not a positive whole number.
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if value:
        try:
            limit = int(value)
        except ValueError:
            limit = 0
        if limit <= 0:
            raise ConfigError(
                f"environment variable {MAX_PIXELS_ENV}={value!r}: expected a positive whole number of "
                "pixels (width x height), e.g. 400000000"
            )
        return limit
    from PIL import Image

    return 2 * int(Image.MAX_IMAGE_PIXELS or _PILLOW_MAX_IMAGE_PIXELS)


def check_max_pixels(value: object) -> int:
    """``value`` as a pixel limit: a positive whole number (``read_image(max_pixels=...)``, ``--max-pixels``).

    Raises:
        ConfigError: anything else (a ``ValueError``), with the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"max_pixels must be a positive integer (--max-pixels N), got {value!r}")
    return int(value)


def check_pixels(p: Path, size: tuple[int, int], limit: int) -> None:
    """Refuse an image of ``size = (width, height)`` above ``limit`` pixels, saying how to raise it.

    Raises:
        DataError: the image has more than ``limit`` pixels.
    """
    if size[0] * size[1] > limit:
        raise DataError(
            f"{p}: image of {size[0]} x {size[1]} = {size[0] * size[1]:,} pixels exceeds the limit of "
            f"{limit:,} pixels; raise it with read_image(..., max_pixels=N) or {MAX_PIXELS_ENV}=N"
        )
