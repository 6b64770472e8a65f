"""Embedded ICC profiles: 8-bit pixels (RGB, grayscale, CMYK) converted to sRGB with Pillow's littleCMS
(``PIL.ImageCms``, relative colorimetric), a profile that is sRGB already left alone, and a warning where
a profile cannot be used or applied.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["apply_profile", "cmyk_to_srgb"]


def _is_profile(icc: bytes) -> bool:
    return len(icc) >= 132 and icc[36:40] == b"acsp"


@functools.lru_cache(maxsize=32)
def _srgb_transform(icc: bytes, mode: str) -> tuple[Any, str]:
    """``(transform to sRGB or None when the profile is sRGB already, profile name)`` for ``mode`` pixels."""
    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    name = ImageCms.getProfileDescription(profile).strip() or "unnamed"
    transform = ImageCms.buildTransform(
        profile,
        ImageCms.createProfile("sRGB"),
        mode,
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,  # in-gamut colours keep their values
        flags=0x0040,  # cmsFLAGS_NOCACHE: the cached transform may be shared between threads
    )
    if mode == "CMYK":
        return transform, name
    # A profile that maps every colour to itself within one level (sRGB, whatever its name) is left alone,
    # so ordinary photos read exactly as stored.
    levels = np.linspace(0, 255, 17).round().astype(np.uint8)
    if mode == "RGB":
        probe = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    else:
        probe = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(probe), transform)).astype(int)
    same = np.abs(out - (probe[..., None] if mode == "L" else probe)).max() <= 1
    return (None if same else transform), name


def apply_profile(p: Path, arr: np.ndarray, icc: bytes, notes: list[str], said: list[str]) -> np.ndarray:
    """Convert 8-bit pixels from their ICC profile to sRGB; for deeper pixels, warn when that is needed.

    What was done goes to ``notes``, warnings to ``said`` (both prefixed for the user by the caller).
    """
    from PIL import Image, ImageCms

    mode = "RGB" if arr.ndim == 3 else "L"
    try:
        if not _is_profile(icc):
            raise ValueError("not an ICC profile")
        transform, name = _srgb_transform(icc, mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as err:
        said.append(f"{p}: cannot use its embedded ICC profile ({err}); colours read as sRGB")
        notes.append("embedded ICC profile unreadable: colours read as sRGB")
        return arr
    if transform is None:
        return arr
    if arr.dtype != np.uint8:
        bits = "float" if arr.dtype.kind == "f" else f"{arr.dtype.itemsize * 8}-bit"
        said.append(
            f"{p}: ICC profile {name!r} not applied: only 8-bit images are converted to sRGB, so the "
            f"{bits} values are read as stored"
        )
        notes.append(f"ICC profile {name!r} not applied ({bits} image)")
        return arr
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(arr)), transform))
    notes.append(f"converted from ICC profile {name!r} to sRGB")
    return out


def cmyk_to_srgb(
    p: Path, im: PILImage.Image, icc: bytes | None, notes: list[str], said: list[str]
) -> PILImage.Image:
    """A CMYK image in sRGB: through its ICC profile, else naively (approximate colours, which is said)."""
    from PIL import ImageCms

    if icc and _is_profile(icc):
        try:
            transform, name = _srgb_transform(icc, "CMYK")
            notes.append(f"converted from CMYK ICC profile {name!r} to sRGB")
            return ImageCms.applyTransform(im, transform)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as err:
            said.append(f"{p}: cannot use its CMYK ICC profile ({err}); converted to RGB naively")
    else:
        said.append(f"{p}: CMYK image without an ICC profile: converted to RGB naively (approximate colours)")
    notes.append("CMYK converted to RGB without a colour profile (approximate colours)")
    return im.convert("RGB")
