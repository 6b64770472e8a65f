"""Illuminant estimation on single images: read any linear (or, with a warning, display-encoded) image,
estimate its light with a trained model or a classical method, and render a white-balanced preview.

Shared by ``tinct predict`` on illuminant runs (:meth:`tinct.constancy.task.IlluminantTask.predict_files`),
the Python API (:func:`tinct.api.estimate_illuminant`, :func:`tinct.api.white_balance`) and the web demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct.core.exceptions import DataError

__all__ = ["CLASSICAL_ESTIMATES", "LinearPhoto", "balanced_preview", "classical_estimates", "read_linear"]

JPEG_WARNING = (
    "8-bit / JPEG files are display-encoded sRGB, not linear camera RGB; linearising with the sRGB curve, "
    "so the estimate is only approximate"
)


@dataclass
class LinearPhoto:
    """A linear camera image ready for an estimator.

    Attributes:
        image: ``(3, H, W)`` float32 linear RGB in [0, 1] (black level removed, 1 = saturation).
        mask: ``(1, H, W)`` bool, True where a pixel is unusable (saturated, below black).
        xyz_to_camera: the camera's colour matrix (camera raw files with one), else None.
        warnings: what the reader had to assume (display-encoded input, no colour matrix).
    """

    image: Tensor
    mask: Tensor
    xyz_to_camera: Tensor | None = None
    warnings: list[str] = field(default_factory=list)


def read_linear(
    source: str | os.PathLike[str] | np.ndarray | Any,
    levels: tuple[float, float | None] = (0.0, None),
    *,
    linear: bool | None = None,
) -> LinearPhoto:
    """Read a camera raw file (DNG, CR2, NEF ...), a linear file (16-bit PNG / TIFF, float ``.npy``), a
    display-encoded photo (JPEG, 8-bit PNG: linearised with the sRGB curve, with a warning), a numpy array
    or a PIL image.

    Args:
        source: a path, an ``(H, W, 3)`` array (float: linear in [0, 1] unless ``linear=False``; uint8:
            display-encoded sRGB; uint16: linear, 65535 = saturation) or a PIL image (display-encoded).
        levels: black and saturation levels of linear files as stored (a run's
            :meth:`~tinct.constancy.task.IlluminantTask.raw_levels`); camera raw files carry their own.
        linear: override whether an array is linear.

    Raises:
        DataError: unreadable file, wrong array shape, or no usable pixel (named).

    Example:
        >>> photo = read_linear(np.full((4, 6, 3), 0.25, np.float32))
        >>> photo.image.shape, bool(photo.mask.any()), photo.warnings
        (torch.Size([3, 4, 6]), False, [])
    """
    from tinct.color.rgb import srgb_to_linear
    from tinct.constancy.folder import check_usable, linear_from_raw
    from tinct.io.image import RawImage, read_image, to_tensor_image
    from tinct.io.raw import is_camera_raw, read_camera_raw

    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if is_camera_raw(path):
            camera_raw = read_camera_raw(path)
            check_usable(
                path, camera_raw.linear, camera_raw.mask, min(camera_raw.black_level), camera_raw.white_level
            )
            notes = []
            if camera_raw.xyz_to_camera is None:
                notes.append(
                    f"{path}: no camera colour matrix in the file or LibRaw's table; the preview shows the "
                    "white-balanced camera RGB as if it were sRGB"
                )
            return LinearPhoto(camera_raw.linear, camera_raw.mask, camera_raw.xyz_to_camera, notes)
        raw = read_image(path)
        name = str(path)
    else:
        if hasattr(source, "convert") and not isinstance(source, np.ndarray):  # a PIL image
            source = np.asarray(source.convert("RGB"))
        array = np.asarray(source)
        if array.ndim != 3 or array.shape[2] != 3:
            raise DataError(f"expected an (H, W, 3) image array, got shape {array.shape}")
        is_linear = array.dtype != np.uint8 if linear is None else linear
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise DataError("image array holds NaN or infinite values")
            white = 1.0
        elif array.dtype in (np.uint8, np.uint16):
            white = float(np.iinfo(array.dtype).max)
        else:
            raise DataError(f"image array of dtype {array.dtype}: expected float, uint8 or uint16")
        raw = RawImage(Path("<array>"), array, white, is_linear)
        name = "<array>"
    if raw.linear:
        image, mask = linear_from_raw(raw, *levels)
        return LinearPhoto(image, mask)
    image = srgb_to_linear(to_tensor_image(raw))
    mask = (image >= 1.0).any(dim=0, keepdim=True)
    return LinearPhoto(image, mask, None, [f"{name}: {JPEG_WARNING}"])


def balanced_preview(photo: LinearPhoto, illuminant: Tensor | None) -> Tensor:
    """A white-balanced sRGB preview ``(3, H, W)`` in [0, 1] (``illuminant=None``: not balanced).

    Camera raw files with a colour matrix are rendered to sRGB with it (a camera's rendering without its
    tone curve); other images show the (balanced) camera RGB as if it were linear sRGB. Exposure: the 99th
    percentile maps to 1.
    """
    from tinct.color.camera import camera_to_linear_srgb
    from tinct.color.illuminant import correct_illuminant
    from tinct.color.rgb import linear_to_srgb

    image = photo.image
    balanced = image if illuminant is None else correct_illuminant(image, illuminant.to(image))
    if photo.xyz_to_camera is not None:
        balanced = camera_to_linear_srgb(balanced, photo.xyz_to_camera)
    sample = balanced.flatten()[:: max(1, balanced.numel() // 200_000)]
    balanced = balanced / torch.quantile(sample, 0.99).clamp_min(1e-6)
    return linear_to_srgb(balanced.clamp(0, 1))


#: Classical estimators shown beside a learned one (names as in ``tinct baselines constancy``).
CLASSICAL_ESTIMATES = ("gray_world", "white_patch", "shades_of_gray", "gray_edge")


def classical_estimates(photo: LinearPhoto, size: int = 64) -> dict[str, np.ndarray]:
    """Unit-norm illuminant estimates of the classical methods (their default parameters) on the photo's
    ``size x size`` thumbnail, as ``{name: (3,) array}``.

    Example:
        >>> photo = read_linear(np.random.default_rng(0).random((32, 32, 3)).astype(np.float32) * [0.9, 0.6, 0.3])
        >>> est = classical_estimates(photo)
        >>> sorted(est), bool(est["gray_world"][0] > est["gray_world"][2])
        (['gray_edge', 'gray_world', 'shades_of_gray', 'white_patch'], True)
    """
    from tinct.constancy import classical
    from tinct.constancy.folder import thumbnail_and_mask

    thumb, empty = thumbnail_and_mask(photo.image, photo.mask, size)
    out = {}
    for name in CLASSICAL_ESTIMATES:
        est = getattr(classical, name)(thumb[None], empty[None])[0]
        out[name] = est.detach().cpu().numpy().astype(np.float64)
    return out
