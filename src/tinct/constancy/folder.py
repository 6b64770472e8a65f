"""The generic folder layout for illuminant estimation: linear images plus ``gt.csv``.

```
DIR/
  gt.csv          # columns image,r,g,b  (ground-truth illuminant in camera RGB, any scale)
  folds.csv       # optional: columns image,fold (integer) for k-fold cross-validation
  <image files>   # 16-bit PNG/TIFF or .npy float H x W x 3 linear camera RGB
```

Black level and saturation are configurable (defaults: 0 and the file type's maximum; 1.0 for float
arrays). Images are reduced to ``size x size`` thumbnails by area averaging over usable pixels only, so
saturated and below-black pixels never leak into the input. :func:`tinct.constancy.layouts.open_constancy`
reads this layout (and the others) into a dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.core.exceptions import DataError
from tinct.io.image import RawImage, read_image

__all__ = [
    "check_usable",
    "illuminant_columns",
    "linear_from_raw",
    "load_linear",
    "read_folds",
    "read_csv_table",
    "read_ground_truth",
    "thumbnail",
    "thumbnail_and_mask",
]


def read_csv_table(path: Path) -> pd.DataFrame:
    """``pandas.read_csv`` with image names kept as strings ("00001" stays "00001"); errors name the file."""
    try:
        return pd.read_csv(path, dtype={"image": str})
    except Exception as err:
        raise DataError(f"{path}: cannot parse as CSV ({err})") from err


def illuminant_columns(df: pd.DataFrame, columns: list[str], names: list[str], path: Path) -> np.ndarray:
    """The ``(N, 3)`` float64 illuminants in ``columns`` of a ground-truth table, all finite and positive.

    Raises:
        DataError: naming ``path``, the CSV row and its image ``names[row]``.
    """
    rgb = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    # Finite, positive and of a sane magnitude: 1e308 is finite, but a norm or a float32 copy of it is inf.
    bad = ~np.isfinite(rgb).all(axis=1) | (rgb < 1e-15).any(axis=1) | (rgb > 1e15).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {row + 2} ({names[row]}): illuminant must be finite and positive, between 1e-15 "
            f"and 1e15, got {rgb[row].tolist()}"
        )
    return rgb


def read_ground_truth(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate ``root/gt.csv`` (columns ``image, r, g, b``; finite, positive, files exist)."""
    path = Path(root) / "gt.csv"
    if not path.is_file():
        raise DataError(f"{path}: ground-truth file not found (expected columns image,r,g,b)")
    df = read_csv_table(path)
    missing = [c for c in ("image", "r", "g", "b") if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}"
        )
    if df.empty:
        raise DataError(f"{path}: no rows")
    rgb = illuminant_columns(df, ["r", "g", "b"], list(df["image"]), path)
    for name in df["image"]:
        if not (Path(root) / str(name)).is_file():
            raise DataError(f"{path}: image {name!r} listed but not found in {root}")
    if df["image"].duplicated().any():
        raise DataError(f"{path}: image {df['image'][df['image'].duplicated()].iloc[0]!r} listed twice")
    from tinct.io.image import IMAGE_SUFFIXES

    listed = {str(n) for n in df["image"]}
    for f in sorted(Path(root).iterdir()):
        if f.suffix.lower() in IMAGE_SUFFIXES and f.name not in listed:
            raise DataError(f"{f}: no ground-truth row in {path}")
    return df.assign(r=rgb[:, 0], g=rgb[:, 1], b=rgb[:, 2])


def read_folds(root: str | os.PathLike[str], images: list[str]) -> np.ndarray | None:
    """Fold ids of ``images`` from ``root/folds.csv`` (columns ``image, fold``), or None without the file.

    Raises:
        DataError: unparsable file, missing columns, a non-integer or negative fold, or an image of
            ``gt.csv`` without a fold.
    """
    path = Path(root) / "folds.csv"
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, dtype={"image": str})
    except Exception as err:
        raise DataError(f"{path}: cannot parse as CSV ({err})") from err
    if not {"image", "fold"} <= set(df.columns):
        raise DataError(f"{path}: expected columns image,fold; found {', '.join(map(str, df.columns))}")
    fold = pd.to_numeric(df["fold"], errors="coerce")
    if fold.isna().any() or (fold < 0).any() or (fold != fold.round()).any():
        row = int(np.flatnonzero(fold.isna() | (fold < 0) | (fold != fold.round()))[0])
        raise DataError(
            f"{path}: row {row + 2}: fold must be a non-negative integer, got {df['fold'][row]!r}"
        )
    lookup = dict(zip(df["image"].astype(str), fold.astype(int), strict=True))
    missing = [n for n in images if n not in lookup]
    if missing:
        raise DataError(f"{path}: no fold for image {missing[0]!r} ({len(missing)} missing)")
    return np.asarray([lookup[n] for n in images], dtype=np.int64)


def linear_from_raw(
    raw: RawImage, black: float = 0.0, saturation: float | None = None, tolerance: float | None = None
) -> tuple[Tensor, Tensor]:
    """``(linear (3, H, W) float32 in [0, 1], unusable mask (1, H, W))`` of a linear raw image as read.

    ``saturation`` defaults to the file type's white level (65535 for 16-bit files, 1.0 for float arrays).
    Pixels below ``black - tolerance`` are masked; the default tolerance is half the black level, so a
    zeroed calibration target is masked but read noise around black is not.

    Raises:
        DataError: ``saturation`` does not exceed ``black``.
    """
    from tinct.color.raw import normalize_raw

    x = torch.from_numpy(np.ascontiguousarray(raw.array.transpose(2, 0, 1)).astype(np.float32))
    sat = raw.white_level if saturation is None else saturation
    if sat <= black:
        raise DataError(f"{raw.path}: saturation {sat} must exceed the black level {black}")
    tol = 0.5 * black if tolerance is None else tolerance
    linear, mask = normalize_raw(x, black=black, saturation=sat, tolerance=tol)
    check_usable(raw.path, linear, mask, black, sat)
    return linear, mask


def check_usable(path: object, linear: Tensor, mask: Tensor, black: float, saturation: float) -> None:
    """Refuse a raw image with no pixel that carries colour: all saturated, all below black, or all black.

    Such an image has no illuminant to estimate (every method would return nothing or grey), so it is an
    error naming the file rather than a sample that silently scores or trains on nothing.

    Raises:
        DataError: every pixel is unusable (saturated or below black), or every usable pixel is at or
            below the black level (an all-black frame: a lens cap, a failed exposure).
    """
    if bool(mask.all()):
        saturated = (linear >= 1.0).any(dim=0)
        what = "saturated" if bool(saturated.all()) else "saturated or below the black level"
        raise DataError(
            f"{path}: no usable pixel: every pixel is {what} (black level {black:g}, saturation "
            f"{saturation:g}); check the black level / saturation, or remove the image"
        )
    if not bool((linear * (~mask).to(linear.dtype)).amax() > 0):
        raise DataError(
            f"{path}: an all-black image: no pixel above the black level {black:g} (a failed exposure or "
            "lens cap?); it has no illuminant to estimate, remove it"
        )


def load_linear(
    path: str | os.PathLike[str], black: float = 0.0, saturation: float | None = None
) -> tuple[Tensor, Tensor]:
    """Read a linear raw image file; see :func:`linear_from_raw`. 8-bit / JPEG files are refused.

    Raises:
        DataError: unreadable file, or an 8-bit / JPEG file (display-encoded, not linear camera RGB).
    """
    raw = read_image(path)
    if not raw.linear:
        raise DataError(
            f"{path}: {raw.bit_depth}-bit / JPEG files are display-encoded, not linear camera RGB; "
            "colour-constancy data must be 16-bit PNG/TIFF or float .npy"
        )
    return linear_from_raw(raw, black, saturation)


def thumbnail_and_mask(image: Tensor, mask: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Area-average ``image`` to ``size x size`` over usable pixels (``mask`` True = unusable).

    Returns:
        ``(thumbnail (3, size, size), empty (1, size, size))``, ``empty`` True for cells without a single
        usable pixel (those cells are 0).
    """
    valid = (~mask).to(image.dtype)
    num = F.adaptive_avg_pool2d((image * valid).unsqueeze(0), size)
    den = F.adaptive_avg_pool2d(valid.unsqueeze(0), size)
    return (num / den.clamp_min(1e-6)).squeeze(0), den.squeeze(0) <= 0


def thumbnail(image: Tensor, mask: Tensor, size: int) -> Tensor:
    """Area-average ``image`` to ``size x size`` over usable pixels (``mask`` True = unusable)."""
    return thumbnail_and_mask(image, mask, size)[0]
