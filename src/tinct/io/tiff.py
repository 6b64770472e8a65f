"""TIFF headers, read with tifffile: the size, orientation and ICC profile of a TIFF that Pillow cannot
open (float RGB), and the upright copy of a TIFF that OpenCV is given to decode.

tifffile only reads and patches headers here: decoding compressed (LZW, Deflate) pixels would need
imagecodecs, so OpenCV decodes them (:mod:`tinct.io.decode`).
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinct.core.exceptions import DataError
from tinct.io.orientation import ORIENTATIONS

__all__ = ["tiff_header", "tiff_upright"]

_ORIENTATION_TAG = 274
_ICC_PROFILE_TAG = 34675  # InterColorProfile
# What tifffile raises for a file that is no TIFF, or is truncated or corrupt (TiffFileError is a ValueError;
# a corrupt tag count gives a TypeError).
_CORRUPT = (ValueError, TypeError, KeyError, IndexError, EOFError, struct.error)


def tiff_header(p: Path, source: Path | bytes, said: list[str]) -> tuple[tuple[int, int], int, bytes | None]:
    """``((width, height) as stored, EXIF orientation, ICC profile)`` of the first image in a TIFF or
    BigTIFF, from ``source``: the file, or its bytes. Corrupt tags tifffile skipped are said in ``said``.

    Raises:
        DataError: not a TIFF file, or truncated or corrupt.
    """
    import tifffile

    try:
        with (
            _tifffile_log(p, said),
            tifffile.TiffFile(io.BytesIO(source) if isinstance(source, bytes) else source) as tif,
        ):
            page = tif.pages[0]
            size = (int(page.imagewidth), int(page.imagelength))
            tags = page.tags
            orientation = tags[_ORIENTATION_TAG].value if _ORIENTATION_TAG in tags else 1
            icc = tags[_ICC_PROFILE_TAG].value if _ICC_PROFILE_TAG in tags else None
    except _CORRUPT as err:
        raise DataError(
            f"{p}: cannot decode image: not a TIFF file, or truncated or corrupt ({err})"
        ) from err
    if not isinstance(orientation, int) or orientation not in ORIENTATIONS:
        orientation = 1  # absent, invalid, or not an integer type
    icc = bytes(icc) if isinstance(icc, bytes) and len(icc) > 4 else None
    return size, orientation, icc


def tiff_upright(p: Path, data: bytes, said: list[str]) -> bytes:
    """The TIFF file with its orientation tag set to 1 (top-left), so a decoder returns the stored pixels.

    The tag is overwritten in a copy by tifffile (:meth:`tifffile.TiffTag.overwrite`: in place, in the
    file's byte order and the tag's type). Corrupt tags tifffile skipped are said in ``said``.

    Raises:
        DataError: the first image has no orientation tag, or the file is truncated or corrupt.
    """
    import tifffile

    out = io.BytesIO(data)
    try:
        with _tifffile_log(p, said), tifffile.TiffFile(out) as tif:
            tif.pages[0].tags[_ORIENTATION_TAG].overwrite(1)
    except _CORRUPT as err:
        raise DataError(
            f"{p}: cannot read the TIFF orientation tag ({err}); truncated or corrupt file"
        ) from err
    return out.getvalue()


@contextmanager
def _tifffile_log(p: Path, said: list[str]) -> Iterator[None]:
    """Keep what tifffile logs from this thread meanwhile (an ERROR record for every corrupt tag it skips,
    hundreds for a corrupt directory) out of the log, and say the first one, naming the file, in ``said``.
    """
    thread = threading.get_ident()
    records: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        if record.thread is not None and record.thread != thread:
            return True  # another thread's use of tifffile: logged as usual
        records.append(record)
        return False

    logger = logging.getLogger("tifffile")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
    if records:
        more = f", and {len(records) - 1} more" if len(records) > 1 else ""
        said.append(
            f"{p}: corrupt TIFF header, read without what tifffile skipped ({records[0].getMessage()}{more})"
        )
