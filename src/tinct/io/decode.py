"""Decoding image files for :func:`tinct.io.image.read_image`, the size checked from the header first.

8-bit files (JPEG, BMP, 8-bit PNG/TIFF) are decoded by Pillow, which, unlike OpenCV, reports a truncated
JPEG instead of filling it with grey. Files with more than 8 bits per sample (16-bit PNG/TIFF, float TIFF),
which Pillow would reduce to 8 bits, are decoded by OpenCV (``IMREAD_UNCHANGED``), whose BGR order is
converted to RGB here, in this one place. A TIFF Pillow cannot parse at all (float RGB) has its header
read by tifffile (:mod:`tinct.io.tiff`).
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinct.core.exceptions import DataError
from tinct.io.icc import cmyk_to_srgb
from tinct.io.limits import check_pixels
from tinct.io.orientation import exif_orientation, png_orientation
from tinct.io.tiff import tiff_header, tiff_upright

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["read_header", "read_pixels"]

_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")  # JPEG includes multi-picture (MPO) files
_PILLOW_LOCK = threading.Lock()


def read_header(p: Path) -> tuple[tuple[int, int], int]:
    """``((width, height) as stored, EXIF orientation)`` of an image file, from its header only.

    Raises:
        DataError: the file is of an unsupported type, or its header cannot be read.
    """
    with _pillow_guard(p, []):
        im = _pillow_open(p)
        if im is None:
            size, orientation, _ = tiff_header(p, p, [])
            return size, orientation
        with im:
            size = im.size
            if im.format == "TIFF":  # Pillow 11 and later give a TIFF's upright size, earlier ones not
                size = (im.tag_v2.get(256, size[0]), im.tag_v2.get(257, size[1]))
            if im.format == "PNG":
                with p.open("rb") as f:
                    return size, png_orientation(f)
            return size, exif_orientation(im, p, [])


def read_pixels(
    p: Path, limit: int, notes: list[str], said: list[str]
) -> tuple[np.ndarray, bytes | None, int, bool]:
    """``(pixels in RGB order, alpha dropped; ICC profile; EXIF orientation; whether the pixels are upright
    already)``, the size checked against ``limit`` before decoding.

    What was done goes to ``notes`` and warnings to ``said``, to be given once the file is read.

    Raises:
        DataError: the image is larger than ``limit``, or the file is truncated, corrupt or unsupported.
        OSError: the file cannot be read.
    """
    with _pillow_guard(p, said):
        im = _pillow_open(p)
        if im is None:  # a TIFF Pillow cannot parse (float RGB): OpenCV decodes it
            data = p.read_bytes()
            size, orientation, icc = tiff_header(p, data, said)
            check_pixels(p, size, limit)
        else:
            try:
                check_pixels(p, im.size, limit)
                deep = _more_than_8_bits(p, im)
                if not deep and im.format == "TIFF":  # Pillow checks a TIFF's size again while decoding
                    with im:
                        return _pillow_decode(p, im, notes, said)
            except BaseException:
                im.close()
                raise
    if im is not None:
        with im:
            if not deep:
                return _pillow_decode(p, im, notes, said)
            icc = im.info.get("icc_profile")
            data = p.read_bytes()
            if im.format == "PNG":
                orientation = png_orientation(io.BytesIO(data))
            else:
                orientation = exif_orientation(im, p, said)
    return _opencv_decode(p, data, orientation, said), icc, orientation, False


@contextmanager
def _pillow_guard(p: Path, said: list[str]) -> Iterator[None]:
    """Around Pillow's header parsing and TIFF decoding: keep its warnings for ``said``, to be given with
    the file's name once it is read (not when it fails). Pillow's own size check (its decompression-bomb
    warning and error) is off meanwhile: tinct checks the size against its own limit
    (:func:`tinct.io.limits.check_pixels`) before decoding, with a message that gives the size and the
    way to raise the limit. One thread at a time: both change module globals and restore them.
    """
    from PIL import Image

    with _PILLOW_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pillow = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = pillow
    said.extend(f"{p}: {str(w.message).strip()}" for w in caught)


def _pillow_open(p: Path) -> PILImage.Image | None:
    """Pillow's lazy image (header read, nothing decoded), or None for a TIFF Pillow cannot parse."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(p, formats=_PILLOW_FORMATS)  # never a plugin that runs a program (EPS)
    except PermissionError as err:
        raise DataError(f"{p}: cannot read the file (permission denied)") from err
    except UnidentifiedImageError as err:
        if p.suffix.lower() in (".tif", ".tiff"):
            return None
        raise DataError(f"{p}: cannot decode image: not a {_kind(p)} file, or truncated or corrupt") from err
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        raise DataError(f"{p}: cannot decode image: truncated or corrupt file ({err})") from err


def _kind(p: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        p.suffix.lower(), p.suffix[1:].upper()
    )


def _more_than_8_bits(p: Path, im: PILImage.Image) -> bool:
    """Whether the file holds more than 8 bits per sample (or floats), which Pillow would reduce."""
    if im.format == "PNG":
        with p.open("rb") as f:
            head = f.read(25)
        return len(head) == 25 and head[24] > 8  # IHDR bit depth
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258, (1,))
        sample_format = tags.get(339, (1,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
        return max(bits) > 8 or any(s != 1 for s in sample_format)
    return False


def _pillow_decode(
    p: Path, im: PILImage.Image, notes: list[str], said: list[str]
) -> tuple[np.ndarray, bytes | None, int, bool]:
    """Decode an 8-bit file: ``(H x W [x 3] uint8 array, ICC profile, EXIF orientation, upright already)``."""

    try:
        # Pillow (11 and later) turns a TIFF upright itself while loading it and deletes the tag; a PNG's
        # eXIf chunk may follow the pixels, so other files are asked after loading.
        orientation = exif_orientation(im, p, said) if im.format == "TIFF" else 1
        im.load()
        if im.format == "TIFF":
            oriented = 0x0112 not in getattr(im, "tag_v2", {})
        else:
            orientation, oriented = exif_orientation(im, p, said), False
        icc = im.info.get("icc_profile")
        mode = im.mode
        if mode in ("1", "LA", "La"):
            im = im.convert("L")
        elif mode not in ("L", "RGB", "CMYK") and not mode.startswith(("I", "F")):
            im = im.convert("RGB")  # palette, alpha, RGBX: palette colours, alpha dropped (as OpenCV does)
        if im.mode == "CMYK":
            im = cmyk_to_srgb(p, im, icc, notes, said)
            icc = None
        arr = np.asarray(im)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as err:
        raise DataError(f"{p}: cannot decode image: truncated or corrupt file ({err})") from err
    if arr.dtype != np.uint8:
        raise DataError(f"{p}: unsupported pixel format {mode!r}; expected 8 or 16 bit, or float")
    return arr, icc, orientation, oriented


def _opencv_decode(p: Path, data: bytes, orientation: int, said: list[str]) -> np.ndarray:
    """Decode a file with more than 8 bits per sample as stored: ``H x W [x 3]``, RGB order, alpha dropped."""
    import cv2

    if orientation != 1 and data[:2] in (b"II", b"MM"):
        # OpenCV applies a TIFF's orientation itself for some values and fails for others (5-8, OpenCV
        # 5.1); it decodes the pixels as stored when told they are upright, and tinct orients them.
        data = tiff_upright(p, data, said)
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as err:  # a header beyond OpenCV's limits (wider than 2**20 pixels) fails an assertion
        raise DataError(
            f"{p}: cannot decode image: corrupt file, or beyond OpenCV's limits ({getattr(err, 'err', '') or err})"
        ) from err
    if arr is None:
        raise DataError(f"{p}: cannot decode image: truncated or corrupt file (OpenCV could not read it)")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]  # OpenCV stores BGR
    return arr
