"""Camera metadata of a photo (exposure time, ISO, f-number, scene brightness): read from EXIF or JSON, written as EXIF."""

from tinct.io.exif.meta import PhotoMeta, exposure_offset
from tinct.io.exif.read import (
    BRIGHTNESS_RANGE,
    exif_tags,
    normalize_meta,
    photo_meta,
    read_exif_meta,
    read_json_meta,
)
from tinct.io.exif.write import exif_bytes

__all__ = [
    "BRIGHTNESS_RANGE",
    "PhotoMeta",
    "exif_bytes",
    "exif_tags",
    "exposure_offset",
    "normalize_meta",
    "photo_meta",
    "read_exif_meta",
    "read_json_meta",
]
