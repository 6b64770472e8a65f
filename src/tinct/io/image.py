"""Reading and writing images without losing bits.

Pillow and imageio silently reduce 16-bit RGB PNGs to 8 bits, which destroys raw camera data. tinct
therefore reads PNG/TIFF through OpenCV (``IMREAD_UNCHANGED``, the reader the colour-constancy literature's
own code uses) and converts its BGR order to RGB in exactly one place, here. ``.npy`` arrays are read with
numpy. Every failure names the file and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tinct.core.exceptions import DataError

__all__ = ["IMAGE_SUFFIXES", "RawImage", "read_image", "to_tensor_image", "write_image"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")


@dataclass(frozen=True)
class RawImage:
    """An image as stored: ``array`` is ``H x W x 3`` in RGB order, integer or float, untouched.

    ``white_level`` is the largest representable value (255, 65535, or 1.0 for float arrays), and
    ``linear`` says whether the file format implies linear data (``.npy``, 16-bit PNG/TIFF) rather than
    display-encoded sRGB (8-bit and JPEG files).
    """

    path: Path
    array: np.ndarray
    white_level: float
    linear: bool

    @property
    def bit_depth(self) -> int | None:
        return None if self.array.dtype.kind == "f" else self.array.dtype.itemsize * 8


def read_image(path: str | os.PathLike[str]) -> RawImage:
    """Read an RGB image file (PNG/TIFF 8 or 16 bit, JPEG, BMP, or ``.npy`` float ``H x W x 3``).

    Grayscale files are expanded to 3 identical channels and an alpha channel is dropped.

    Raises:
        DataError: the file is missing, unreadable, has an unsupported layout or dtype, or holds NaN/inf.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DataError(f"{p}: unsupported image type {suffix!r}; supported: {', '.join(IMAGE_SUFFIXES)}")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as err:  # numpy raises several types for corrupt files
            raise DataError(f"{p}: cannot read as a .npy array ({err})") from err
        if arr.dtype.kind not in "fiu":
            raise DataError(f"{p}: expected a numeric array, got dtype {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(f"{p}: array contains NaN or inf values")
        arr = _as_hw3(arr, p)
        white = 1.0 if arr.dtype.kind == "f" else float(np.iinfo(arr.dtype).max)
        return RawImage(p, arr, white, linear=True)

    import cv2

    arr = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError(f"{p}: cannot decode image (corrupt or truncated file?)")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = np.ascontiguousarray(arr[:, :, ::-1])  # OpenCV stores BGR
    arr = _as_hw3(arr, p)
    if arr.dtype == np.uint8:
        return RawImage(p, arr, 255.0, linear=False)
    if arr.dtype == np.uint16:
        return RawImage(p, arr, 65535.0, linear=True)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"{p}: image contains NaN or inf values")
        return RawImage(p, arr.astype(np.float32), 1.0, linear=True)
    raise DataError(f"{p}: unsupported bit depth / dtype {arr.dtype}; expected 8 or 16 bit, or float")


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

    Values are clipped to [0, 1] and rounded. The file is written atomically (temporary file + rename).
    """
    import cv2

    p = Path(path)
    arr = image.detach().cpu().numpy().transpose(1, 2, 0) if isinstance(image, Tensor) else np.asarray(image)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    out = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * scale).astype(dtype)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{p.suffix}")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(out[:, :, ::-1])):
        raise DataError(f"{p}: could not write image (unsupported extension {p.suffix!r}?)")
    os.replace(tmp, p)
    return p
