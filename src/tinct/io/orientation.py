"""EXIF orientation: reading it from a file's header without decoding the pixels, and applying it to an
array exactly as ``PIL.ImageOps.exif_transpose`` does (for the 16-bit and float arrays Pillow cannot hold).

A TIFF's orientation tag is read with tifffile (:mod:`tinct.io.tiff`).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["ORIENTATIONS", "exif_orientation", "orient", "png_orientation"]

#: What each EXIF orientation other than 1 (upright) does to the stored pixels, as the notes say it.
ORIENTATIONS = {
    2: "mirrored left-right",
    3: "rotated 180 degrees",
    4: "mirrored top-bottom",
    5: "mirrored along the main diagonal",
    6: "rotated 90 degrees clockwise",
    7: "mirrored along the anti-diagonal",
    8: "rotated 90 degrees counter-clockwise",
}


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (2-8) to an ``H x W [x C]`` array as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation in (5, 6, 7, 8):
        arr = np.swapaxes(arr, 0, 1)  # 5: transpose; 6, 7, 8 are a transpose and a flip
    if orientation in (2, 3, 6):
        arr = arr[:, ::-1]
    if orientation in (3, 4, 8):
        arr = arr[::-1]
    if orientation == 7:
        arr = arr[::-1, ::-1]
    return np.ascontiguousarray(arr)


def exif_orientation(im: PILImage.Image, p: Path, said: list[str]) -> int:
    """The EXIF orientation Pillow reads for ``im`` (1 when absent, invalid or unreadable, which is said)."""
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception as err:  # Pillow raises several types for a corrupt EXIF block
        said.append(f"{p}: cannot read the EXIF orientation ({err}); image read as stored, not rotated")
        return 1
    return value if value in ORIENTATIONS else 1


def png_orientation(f: BinaryIO) -> int:
    """The EXIF orientation in a PNG's ``eXIf`` chunk (1 without one), seeking from chunk to chunk.

    Pillow has no header-only way to this: an ``eXIf`` chunk may follow the pixels, and
    ``PngImageFile.getexif`` then loads (decodes) the image, which for a 16-bit PNG is what OpenCV
    must do instead, after the size check. So the chunk headers are walked here (8 bytes each), and the
    EXIF block found is parsed by Pillow.
    """
    from PIL import Image

    f.seek(8)  # the PNG signature
    while len(head := f.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"eXIf":
            try:
                exif = Image.Exif()
                exif.load(f.read(length))
                value = int(exif.get(0x0112, 1))
            except Exception:  # a corrupt EXIF block: the image is read as stored
                return 1
            return value if value in ORIENTATIONS else 1
        if kind == b"IEND":
            break
        f.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
    return 1
