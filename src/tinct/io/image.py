"""Reading and writing images without losing bits, safe with any input.

Pillow and imageio silently reduce 16-bit RGB PNGs to 8 bits, which destroys raw camera data, so files with
more than 8 bits per sample (16-bit PNG/TIFF, float TIFF) are decoded by OpenCV (``IMREAD_UNCHANGED``, the
reader the colour-constancy literature's own code uses), whose BGR order is converted to RGB in exactly one
place (:mod:`tinct.io.decode`). 8-bit files (JPEG, BMP, 8-bit PNG/TIFF) are decoded by Pillow, which, unlike
OpenCV, reports a truncated JPEG instead of filling it with grey. ``.npy`` arrays are read with numpy.

Every photo is turned upright by its EXIF orientation (:mod:`tinct.io.orientation`) and, when 8 bits,
converted from its embedded ICC profile to sRGB (:mod:`tinct.io.icc`); :attr:`RawImage.notes` says what was
done. The size is read from the header and checked against a pixel limit (:mod:`tinct.io.limits`) before
anything is decoded. Every failure names the file and the problem.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tinct.core.atomic import atomic_write_bytes
from tinct.core.exceptions import DataError
from tinct.io.decode import read_header, read_pixels
from tinct.io.icc import apply_profile
from tinct.io.limits import MAX_PIXELS_ENV, check_max_pixels, check_pixels, max_pixels
from tinct.io.orientation import ORIENTATIONS, orient

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "RawImage",
    "image_size",
    "max_pixels",
    "read_image",
    "to_tensor_image",
    "write_image",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")

_WRITE_BIT_DEPTHS = {
    ".png": (8, 16),
    ".tif": (8, 16),
    ".tiff": (8, 16),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".bmp": (8,),
}


@dataclass(frozen=True)
class RawImage:
    """An image as read: ``array`` is ``H x W x 3`` in RGB order, integer or float, with the stored values
    (only turned upright by the EXIF orientation, and an 8-bit file converted from its ICC profile to sRGB).

    ``white_level`` is the largest representable value (255, 65535, or 1.0 for float arrays), and
    ``linear`` says whether the file format implies linear data (``.npy``, 16-bit PNG/TIFF) rather than
    display-encoded sRGB (8-bit and JPEG files). ``notes`` says what reading changed, for the user:
    ``"rotated 90 degrees clockwise by EXIF orientation 6"``, ``"converted from ICC profile 'Display P3'
    to sRGB"``.
    """

    path: Path
    array: np.ndarray
    white_level: float
    linear: bool
    notes: tuple[str, ...] = ()

    @property
    def bit_depth(self) -> int | None:
        return None if self.array.dtype.kind == "f" else self.array.dtype.itemsize * 8


_default_max_pixels = max_pixels  # read_image's keyword hides the function's name


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file or ``.npy`` array as :func:`read_image` returns it (upright),
    from the header: nothing is decoded.

    Raises:
        DataError: the file is missing, empty, of an unsupported type, or its header cannot be read.
    """
    p = _check_file(path)
    if p.suffix.lower() == ".npy":
        shape = _npy_header(p)[0]
        return (shape[1], shape[0]) if len(shape) >= 2 else (0, 0)
    (width, height), orientation = read_header(p)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> RawImage:
    """Read an RGB image file (PNG/TIFF 8 or 16 bit, JPEG, BMP, or ``.npy`` float ``H x W x 3``).

    Grayscale image files are expanded to 3 identical channels and an alpha channel is dropped. Images are
    turned upright by their EXIF orientation (Pillow's ``ImageOps.exif_transpose``), and 8-bit images with
    an embedded ICC profile other than sRGB are converted to sRGB (relative colorimetric); a 16-bit file's
    profile cannot be applied and gives a warning. ``.npy`` arrays must be floating point (any precision,
    returned as float32) ``H x W x 3``.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels (width x height, read from the header before
            decoding); default :func:`max_pixels` (``$TINCT_MAX_PIXELS`` or Pillow's limit).

    Raises:
        DataError: the file is missing, empty, truncated or corrupt, larger than ``max_pixels``, has an
            unsupported layout or dtype (2-D or integer ``.npy`` included), or holds NaN/inf.
        ConfigError: ``max_pixels`` is not a positive integer, or not given and ``$TINCT_MAX_PIXELS`` is
            invalid.
    """
    p = _check_file(path)
    limit = _default_max_pixels() if max_pixels is None else check_max_pixels(max_pixels)
    if p.suffix.lower() == ".npy":
        return _read_npy(p, limit)

    notes: list[str] = []
    said: list[str] = []  # warnings, given once the file is read
    try:
        arr, icc, orientation, oriented = read_pixels(p, limit, notes, said)
    except OSError as err:  # the decoders' own errors are DataErrors already
        raise DataError(f"{p}: cannot read the file ({err.strerror or err})") from err
    if icc:
        arr = apply_profile(p, arr, icc, notes, said)
    if orientation in ORIENTATIONS:
        arr = arr if oriented else orient(arr, orientation)
        notes.append(f"{ORIENTATIONS[orientation]} by EXIF orientation {orientation}")
    for message in said:
        warnings.warn(message, stacklevel=2)

    arr = np.ascontiguousarray(_as_hw3(arr, p))
    if arr.dtype == np.uint8:
        return RawImage(p, arr, 255.0, linear=False, notes=tuple(notes))
    if arr.dtype == np.uint16:
        return RawImage(p, arr, 65535.0, linear=True, notes=tuple(notes))
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"{p}: image contains NaN or inf values")
        return RawImage(p, arr.astype(np.float32), 1.0, linear=True, notes=tuple(notes))
    raise DataError(f"{p}: unsupported bit depth / dtype {arr.dtype}; expected 8 or 16 bit, or float")


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"{p}: unsupported image type {suffix!r}; supported: {', '.join(IMAGE_SUFFIXES)}")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return p


def _npy_header(p: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        head = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # numpy raises several types for corrupt files
        raise DataError(f"{p}: cannot read as a .npy array ({err})") from err
    shape, dtype = tuple(head.shape), head.dtype
    del head
    return shape, dtype


def _read_npy(p: Path, limit: int) -> RawImage:
    shape, dtype = _npy_header(p)
    if dtype.kind in "iu":
        raise DataError(
            f"{p}: integer .npy is not supported (dtype {dtype}): save linear values as float "
            "(e.g. arr.astype(np.float32) / white_level)"
        )
    if dtype.kind != "f":
        raise DataError(f"{p}: expected a float array, got dtype {dtype}")
    if len(shape) != 3 or shape[2] != 3:
        hint = "; for one channel repeat it: np.repeat(a[..., None], 3, axis=2)" if len(shape) == 2 else ""
        raise DataError(f"{p}: expected an H x W x 3 float array, got shape {shape}{hint}")
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{p}: image is empty, shape {shape}")
    check_pixels(p, (shape[1], shape[0]), limit)
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as err:
        raise DataError(f"{p}: cannot read as a .npy array ({err})") from err
    with np.errstate(over="ignore"):  # beyond float32: infinite, and refused just below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DataError(f"{p}: array contains NaN or inf values (as float32)")
    return RawImage(p, arr, 1.0, linear=True)


def _as_hw3(arr: np.ndarray, p: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"{p}: expected an H x W x 3 image, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{p}: image is empty, shape {arr.shape}")
    return arr


def to_tensor_image(raw: RawImage, dtype: torch.dtype = torch.float32) -> Tensor:
    """The image as a ``(3, H, W)`` float tensor scaled by its white level (so in [0, 1] for integer files)."""
    arr = raw.array.astype(np.float64 if dtype == torch.float64 else np.float32) / raw.white_level
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(dtype)


def write_image(path: str | os.PathLike[str], image: Tensor | np.ndarray, bit_depth: int = 8) -> Path:
    """Write a ``(3, H, W)`` tensor or ``H x W x 3`` array in [0, 1] as an 8- or 16-bit PNG/TIFF (or JPEG, 8 bit).

    Values are clipped to [0, 1] and rounded; an ``H x W x 3`` array that is already of the bit depth's
    integer type (``uint8`` for 8 bits, ``uint16`` for 16) is written as it is. The image is encoded in memory and written atomically
    (:func:`tinct.core.atomic.atomic_write_bytes`: a new temporary file with an unpredictable name, then
    a rename), so a crash never leaves a truncated image, and no file or link already in the folder is
    ever written through: a link at ``path`` itself is replaced by the image, its target left alone.

    Raises:
        ValueError: ``bit_depth`` is not 8 or 16.
        DataError: unsupported extension, 16 bits for a JPEG/BMP, or the folder is not writable.
    """
    import cv2

    p = Path(path)
    arr = image.detach().cpu().numpy().transpose(1, 2, 0) if isinstance(image, Tensor) else np.asarray(image)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    suffix = p.suffix.lower()
    if suffix not in _WRITE_BIT_DEPTHS:
        raise DataError(
            f"{p}: cannot write an image with unsupported extension {p.suffix!r}; "
            f"supported: {', '.join(_WRITE_BIT_DEPTHS)}"
        )
    if bit_depth not in _WRITE_BIT_DEPTHS[suffix]:
        raise DataError(f"{p}: a {suffix} file holds 8 bits per channel; write 16 bits as .png or .tif")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    if arr.dtype == dtype:
        out = arr
    else:
        out = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * scale).astype(dtype)
    if out.ndim == 3:
        out = out[:, :, ::-1]  # OpenCV stores BGR
    try:
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(out))
    except cv2.error as err:
        raise DataError(f"{p}: cannot encode an image of shape {arr.shape} as {suffix} ({err})") from err
    if not ok:
        raise DataError(f"{p}: cannot encode an image of shape {arr.shape} as {suffix}")
    try:
        return atomic_write_bytes(p, encoded.tobytes())
    except PermissionError as err:
        raise DataError(
            f"{p}: cannot write the image: folder {p.parent} is not writable (permission denied)"
        ) from err
    except OSError as err:
        raise DataError(f"{p}: cannot write the image ({err.strerror or err})") from err
