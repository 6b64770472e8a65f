"""Camera raw files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, PEF, SRW ...) read through LibRaw (rawpy).

:func:`read_camera_raw` returns linear camera RGB as the sensor saw it: the file's black level subtracted,
divided by (white level - black level), demosaicked bilinearly (LibRaw's ``LINEAR``), with no white balance,
no colour matrix, no tone curve and no brightening, turned upright like a viewer shows it. Beside it come
the saturated-pixel mask (from the mosaic, before demosaicking), the levels and the camera's XYZ -> camera
matrix, which :func:`tinct.color.camera.camera_to_linear_srgb` uses to render white-balanced camera RGB as
sRGB.

LibRaw details this module takes care of (each checked by ``tests/io/test_camera_raw.py``):

- LibRaw rescales to 16 bits by ``65535 / (white - black)``, but lowers the white level to the brightest
  value in the data when that is above 75 % of it (``adjust_maximum_thr``); that is turned off, so the
  scale is the file's white level whatever the picture.
- With per-channel black levels LibRaw divides every channel by ``white - min(black)``; each channel is
  rescaled here to ``white - black[c]``.
- Images are turned by the file's orientation (LibRaw's ``flip``: EXIF orientations 1, 2, 3, 6, 8 ...), the
  mask with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct.core.exceptions import DataError
from tinct.io.limits import check_max_pixels, check_pixels, max_pixels

__all__ = ["RAW_SUFFIXES", "CameraRaw", "is_camera_raw", "read_camera_raw"]

#: File suffixes (lower case) read as camera raw files: those of the common cameras LibRaw decodes.
#: ``.raw`` (old Panasonic and Leica) is left out: other programs use it for headerless dumps.
RAW_SUFFIXES = (
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
    ".rwl", ".pef", ".srw", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr", ".mef", ".mos", ".mrw",
)  # fmt: skip

# Demosaic (bilinear, LINEAR) without touching colour: unit white-balance multipliers, the camera's own colour
# space (ColorSpace.raw), linear output
# at 16 bits, the file's black and white levels (adjust_maximum_thr=0 keeps LibRaw from lowering the white
# level to the data's maximum), clipped highlights, the file's orientation (user_flip not given).
_POSTPROCESS: dict[str, Any] = {
    "use_camera_wb": False,
    "use_auto_wb": False,
    "user_wb": [1.0, 1.0, 1.0, 1.0],
    "output_bps": 16,
    "gamma": (1.0, 1.0),
    "no_auto_bright": True,
    "bright": 1.0,
    "adjust_maximum_thr": 0.0,
    "half_size": False,
    "four_color_rgb": False,
}

# DNG tags (Adobe DNG specification 1.4) read with tifffile: LibRaw applies, but does not expose, a DNG's
# ColorMatrix (rawpy's rgb_xyz_matrix is LibRaw's own table, zero for a DNG).
_MAKE, _MODEL, _UNIQUE_MODEL = 271, 272, 50708
_COLOR_MATRIX = (50721, 50722)
_CAMERA_CALIBRATION = (50723, 50724)
_CALIBRATION_ILLUMINANT = (50778, 50779)
_ANALOG_BALANCE = 50727
# Correlated colour temperature (K) of the EXIF LightSource codes a CalibrationIlluminant takes.
_LIGHT_SOURCE_CCT = {
    1: 5500, 2: 4200, 3: 2856, 4: 5500, 9: 5500, 10: 6500, 11: 7500, 12: 6430, 13: 5000, 14: 4150,
    15: 3450, 16: 2940, 17: 2856, 18: 4874, 19: 6774, 20: 5503, 21: 6504, 22: 7504, 23: 5003, 24: 3200,
}  # fmt: skip
_D65 = 6504.0


@dataclass(frozen=True, eq=False)
class CameraRaw:
    """A camera raw file as read by :func:`read_camera_raw`.

    Attributes:
        path: the file.
        linear: ``(3, H, W)`` float32 camera RGB in [0, 1]: ``(value - black) / (white - black)`` per
            channel, demosaicked, not white-balanced, upright.
        mask: ``(1, H, W)`` bool, True where a pixel is unusable: a photosite it is interpolated from (its
            3 x 3 neighbourhood in the mosaic) is at or above the white level.
        black_level: black level of the R, G, B channels in raw code values (G: the mean of the two greens).
        white_level: saturation level in raw code values.
        xyz_to_camera: ``(3, 3)`` float64 camera RGB from CIE XYZ: the DNG ColorMatrix (times
            CameraCalibration and AnalogBalance where given), else LibRaw's Adobe coefficients for the camera
            model; None when neither is known.
        camera: ``"<make> <model>"`` where the file says it (TIFF-based files: DNG, CR2, NEF, ARW ...),
            else ``""``.
        notes: what reading did that a user may want to know (orientation, where the matrix came from).
    """

    path: Path
    linear: Tensor
    mask: Tensor
    black_level: tuple[float, float, float]
    white_level: float
    xyz_to_camera: Tensor | None
    camera: str = ""
    notes: tuple[str, ...] = ()


_default_max_pixels = max_pixels  # read_camera_raw's keyword hides the function's name


def is_camera_raw(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a camera raw file, by its suffix (any case; see :data:`RAW_SUFFIXES`).

    Example:
        >>> is_camera_raw("IMG_0001.CR2"), is_camera_raw("scene.png")
        (True, False)
    """
    return Path(path).suffix.lower() in RAW_SUFFIXES


def read_camera_raw(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> CameraRaw:
    """Read a camera raw file as linear camera RGB, its saturation mask, levels and colour matrix.

    The black and white levels are the file's (LibRaw reads them from the DNG tags or the maker notes, or
    knows them for the camera model); the mosaic is demosaicked bilinearly with unit white-balance gains in
    the camera's own colour space, so a grey surface keeps the colour of the light. The image is turned
    upright by the file's orientation, as a viewer (and LibRaw by default) shows it; the mask is turned
    with it.

    Args:
        path: the raw file (a suffix of :data:`RAW_SUFFIXES`).
        max_pixels: refuse images with more pixels (width x height of the sensor's visible area, read from
            the header before the mosaic is decoded); default :func:`tinct.io.limits.max_pixels`
            (``$TINCT_MAX_PIXELS`` or Pillow's limit), as :func:`tinct.io.image.read_image`.

    Returns:
        A :class:`CameraRaw`.

    Raises:
        DataError: the file is missing, empty, not a raw suffix, larger than ``max_pixels``, not an RGB
            sensor (monochrome, CMYG), or LibRaw cannot read it (its reason given).
        ConfigError: ``max_pixels`` is not a positive integer, or not given and ``$TINCT_MAX_PIXELS`` is
            invalid.
    """
    import rawpy

    p = _check_file(path)
    limit = _default_max_pixels() if max_pixels is None else check_max_pixels(max_pixels)
    try:
        with rawpy.imread(str(p)) as raw:
            sizes = raw.sizes
            check_pixels(p, (sizes.width, sizes.height), limit)
            desc = raw.color_desc.decode("ascii", "replace")
            if raw.num_colors != 3 or not desc.startswith("RGB"):
                raise DataError(
                    f"{p}: a {raw.num_colors}-colour sensor ({desc.strip()!r}); only RGB sensors (Bayer or "
                    "X-Trans) can be read"
                )
            saturated = raw.raw_image_visible >= raw.white_level
            if saturated.ndim == 3:  # a linear (already demosaicked) DNG, Foveon: one value per channel
                saturated = saturated[..., :3].any(axis=2)
            black4 = [float(b) for b in raw.black_level_per_channel]
            white = float(raw.white_level)
            libraw_matrix = np.array(raw.rgb_xyz_matrix[:3], dtype=np.float64)
            rgb = raw.postprocess(
                demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
                output_color=rawpy.ColorSpace.raw,
                **_POSTPROCESS,
            )
    except (rawpy.LibRawError, RuntimeError) as err:  # RuntimeError: rawpy's "unsupported raw data"
        hint = ": truncated or unreadable file" if isinstance(err, rawpy.LibRawIOError) else ""
        raise DataError(f"{p}: cannot read the camera raw file ({_reason(err)}{hint})") from err

    black = tuple(float(np.mean([b for b, d in zip(black4, desc, strict=False) if d == c])) for c in "RGB")
    if not all(white > b for b in black):
        raise DataError(f"{p}: white level {white:g} does not exceed the black level {black}")
    # LibRaw scales every channel by 65535 / (white - min(black)); rescale to the channel's own black.
    gain = torch.tensor([(white - min(black4)) / (white - b) for b in black], dtype=torch.float32)
    linear = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(torch.float32) / 65535.0
    linear = (linear * gain[:, None, None]).clamp_(0.0, 1.0)

    notes: list[str] = []
    mask = _orient(_dilate3(saturated), sizes.flip)
    if sizes.flip:
        notes.append(f"turned upright by the file's orientation (LibRaw flip {sizes.flip})")
    if mask.shape != linear.shape[1:]:  # stretched non-square pixels, Fuji SuperCCD: approximate
        mask = _resize_nearest(mask, linear.shape[1:])
        notes.append(f"saturation mask resized from the sensor's {saturated.shape} to the image's pixels")

    tags = _tiff_tags(p)
    xyz_to_camera, source = _dng_xyz_to_camera(tags)
    if xyz_to_camera is None and np.any(libraw_matrix):
        xyz_to_camera, source = libraw_matrix, "LibRaw's Adobe coefficients for the camera model"
    notes.append(f"colour matrix: {source}" if source else "no colour matrix in the file or LibRaw's table")
    return CameraRaw(
        path=p,
        linear=linear,
        mask=torch.from_numpy(np.ascontiguousarray(mask))[None],
        black_level=black,  # type: ignore[arg-type]
        white_level=white,
        xyz_to_camera=None if xyz_to_camera is None else torch.from_numpy(xyz_to_camera),
        camera=_camera_name(tags),
        notes=tuple(notes),
    )


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if not is_camera_raw(p):
        raise DataError(
            f"{p}: not a camera raw file (suffix {p.suffix.lower()!r}); supported: {', '.join(RAW_SUFFIXES)}"
        )
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return p


def _reason(err: Exception) -> str:
    """LibRaw's message on one line (rawpy gives it as bytes: ``b'Unsupported file format or not RAW file'``)."""
    arg = err.args[0] if err.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg or type(err).__name__)
    return " ".join(text.split()) or type(err).__name__


def _dilate3(a: np.ndarray) -> np.ndarray:
    """``a`` (bool, 2-D) dilated by a 3 x 3 square: the photosites a bilinear demosaic reads for a pixel."""
    out = a.copy()
    for axis in (0, 1):
        grown = out.copy()
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        grown[tuple(lo)] |= out[tuple(hi)]
        grown[tuple(hi)] |= out[tuple(lo)]
        out = grown
    return out


def _orient(a: np.ndarray, flip: int) -> np.ndarray:
    """``a`` turned as LibRaw turns its output for ``flip`` (dcraw's ``flip_index``: bit 2 transposes,
    bit 1 mirrors rows, bit 0 mirrors columns, the mirrors taken in the sensor's frame)."""
    if flip & 2:
        a = a[::-1, :]
    if flip & 1:
        a = a[:, ::-1]
    if flip & 4:
        a = a.T
    return a


def _resize_nearest(a: np.ndarray, size: tuple[int, ...] | torch.Size) -> np.ndarray:
    rows = np.minimum((np.arange(size[0]) * a.shape[0]) // size[0], a.shape[0] - 1)
    cols = np.minimum((np.arange(size[1]) * a.shape[1]) // size[1], a.shape[1] - 1)
    return a[rows][:, cols]


def _tiff_tags(p: Path) -> dict[int, Any]:
    """The first IFD's tags of a TIFF-based raw file (DNG, CR2, NEF, ARW ...), by code; ``{}`` for other
    containers or unreadable headers (this metadata is optional: LibRaw has read the pixels)."""
    import tifffile

    from tinct.io.tiff import _CORRUPT, _tifffile_log

    try:
        with _tifffile_log(p, []), tifffile.TiffFile(p) as tif:
            return {tag.code: tag.value for tag in tif.pages[0].tags.values()}
    except (*_CORRUPT, OSError):
        return {}


def _rationals(value: Any, count: int) -> np.ndarray | None:
    """``count`` numbers of a (signed) rational tag as tifffile gives it: numerator, denominator, ..."""
    try:
        flat = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if flat.size == 2 * count:
        den = flat[1::2]
        if np.any(den == 0):
            return None
        flat = flat[0::2] / den
    return flat if flat.size == count and np.isfinite(flat).all() else None


def _dng_xyz_to_camera(tags: dict[int, Any]) -> tuple[np.ndarray | None, str]:
    """XYZ -> camera of a DNG: ``AnalogBalance @ CameraCalibration @ ColorMatrix`` (DNG 1.4, chapter 6) of
    the ColorMatrix calibrated nearest D65 (in mired), since the preview renders for a D65 white."""
    found: list[tuple[float, int]] = []
    for i, code in enumerate(_COLOR_MATRIX):
        if code in tags and _rationals(tags[code], 9) is not None:
            cct = _LIGHT_SOURCE_CCT.get(int(tags.get(_CALIBRATION_ILLUMINANT[i], 0) or 0))
            # Unknown illuminants rank after known ones; of two unknown, ColorMatrix2 (by convention D65).
            found.append((abs(1e6 / cct - 1e6 / _D65) if cct else 1e9 - i, i))
    if not found:
        return None, ""
    i = min(found)[1]
    matrix = _rationals(tags[_COLOR_MATRIX[i]], 9).reshape(3, 3)  # type: ignore[union-attr]
    calibration = _rationals(tags.get(_CAMERA_CALIBRATION[i]), 9)
    if calibration is not None:
        matrix = calibration.reshape(3, 3) @ matrix
    balance = _rationals(tags.get(_ANALOG_BALANCE), 3)
    if balance is not None:
        matrix = np.diag(balance) @ matrix
    return matrix, f"DNG ColorMatrix{i + 1}"


def _camera_name(tags: dict[int, Any]) -> str:
    make, model = (str(tags.get(code) or "").strip() for code in (_MAKE, _MODEL))
    if model:
        return model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return str(tags.get(_UNIQUE_MODEL) or make).strip()
