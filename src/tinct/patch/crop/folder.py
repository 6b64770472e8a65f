"""Cropping a folder tree of photos (the ``tinct data crop`` command).

:func:`crop_folder` applies :func:`~tinct.patch.crop.locate_patch` to a folder tree, keeping each file's
EXIF block, and writes the table of boxes, the labels of the cropped images with the IoU against true
boxes when those are known, and a contact sheet.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinct.core.atomic import atomic_write_bytes
from tinct.core.exceptions import DataError
from tinct.core.progress import track
from tinct.io.image import read_image
from tinct.patch.crop.locate import Box, crop_with_context, locate_patch
from tinct.patch.crop.sheet import _draw_sheet, _Thumb, _thumbnail

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CROP_SUFFIXES", "crop_folder"]

CROP_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_TRUE_COLUMNS = ("patch_x0", "patch_y0", "patch_x1", "patch_y1")
_CROP_COLUMNS = ["image", "x0", "y0", "x1", "y1", "context", "width", "height"]
_PIL_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


def _write_crop(src: Path, dst: Path, crop: np.ndarray) -> None:
    """Write ``crop`` to ``dst`` in the format of its suffix with the EXIF block of ``src``, atomically.

    8-bit crops go through Pillow, which carries EXIF (JPEG at quality 95). 16-bit and float crops (PNG,
    TIFF) go through OpenCV, as Pillow cannot write 16-bit RGB; their EXIF block is not kept.
    """
    import io

    from PIL import ExifTags, Image

    if crop.dtype != np.uint8:
        import cv2

        ok, buf = cv2.imencode(dst.suffix, np.ascontiguousarray(crop[:, :, ::-1]))
        if not ok:
            raise DataError(f"{dst}: cannot write a {crop.dtype} crop as {dst.suffix}")
        atomic_write_bytes(dst, buf.tobytes())
        return
    try:
        with Image.open(src) as im:
            exif: bytes | None = None
            if im.info.get("exif"):
                tags = im.getexif()
                # The crop is cut from the photo as tinct reads it, already turned upright by its EXIF
                # orientation: copied as it was, the tag would turn the crop a second time.
                if tags.get(ExifTags.Base.Orientation, 1) != 1:
                    tags[ExifTags.Base.Orientation] = 1
                exif = tags.tobytes()
    except OSError:  # OpenCV read it; Pillow cannot: write it without EXIF
        exif = None
    fmt = _PIL_FORMATS[dst.suffix.lower()]
    options: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if exif and fmt != "BMP":
        options["exif"] = exif
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop)).save(buf, format=fmt, **options)
    atomic_write_bytes(dst, buf.getvalue())


def _read_labels(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        labels = pd.read_csv(path)
    except Exception as err:  # pandas raises several types for malformed CSV
        raise DataError(f"{path}: cannot read as CSV ({err})") from err
    if "image" not in labels.columns:
        raise DataError(f"{path}: no 'image' column; columns are {', '.join(map(str, labels.columns))}")
    labels["image"] = labels["image"].astype(str).str.replace("\\", "/", regex=False)
    return labels


def _true_boxes(labels: pd.DataFrame, path: Path) -> dict[str, Box]:
    """The true box of each labelled image, when ``labels`` has the ``patch_*`` columns."""
    if not all(c in labels.columns for c in _TRUE_COLUMNS):
        return {}
    boxes: dict[str, Box] = {}
    for name, row in zip(labels["image"], labels[list(_TRUE_COLUMNS)].itertuples(index=False), strict=True):
        try:
            boxes[name] = Box(*(int(v) for v in row))
        except (TypeError, ValueError) as err:  # NaN, text, or x1 < x0
            raise DataError(f"{path}: bad true box {tuple(row)} for {name!r} ({err})") from err
    return boxes


def crop_folder(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    context: int = 0,
    sheet: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Crop the target patch out of every image under ``in_dir`` into ``out_dir`` (``tinct data crop``).

    Every image (``.jpg .jpeg .png .tif .tiff .bmp``, recursively) is cropped to its patch grown by
    ``context`` px per side (clipped at the image edge) and written under the same relative path and
    format, with the source's EXIF block (JPEG at quality 95). Then, each written atomically:

    - ``crops.csv``: ``image`` (path relative to ``in_dir``, ``/``-separated), the found box ``x0, y0, x1,
      y1`` in source pixels, ``context``, and the ``width``, ``height`` of the written crop;
    - ``labels.csv`` when ``in_dir/labels.csv`` exists: its rows for the cropped images (matched on its
      ``image`` column, the same relative path), plus ``iou`` of the found box against the true box when
      it has the columns ``patch_x0, patch_y0, patch_x1, patch_y1``;
    - ``contact_sheet.png`` with ``sheet`` (see :func:`~tinct.patch.crop.contact_sheet`; at most 48
      images).

    A file that cannot be read or holds no patch is skipped with a warning naming it: one bad photo never
    stops a batch nor loses the crops already made (:func:`~tinct.patch.crop.locate_patches`, by
    contrast, raises).

    Args:
        in_dir: folder of photos.
        out_dir: destination folder (created; may not be ``in_dir``).
        context: surround kept on each side of the patch, in pixels (>= 0).
        sheet: also draw the contact sheet.
        progress: show a progress bar (on a terminal only).

    Returns:
        The ``crops.csv`` table.

    Raises:
        DataError: ``in_dir`` is not a folder, or its ``labels.csv`` is unreadable, lacks an ``image``
            column or holds a bad true box.
    """
    import pandas as pd

    src_root, dst_root = Path(in_dir), Path(out_dir)
    if not src_root.is_dir():
        raise DataError(f"{src_root}: no such folder")
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if dst_root.resolve() == src_root.resolve():
        raise ValueError(f"{dst_root}: the output folder must differ from the input folder")
    labels_path = src_root / "labels.csv"
    labels = _read_labels(labels_path) if labels_path.is_file() else None
    truth = _true_boxes(labels, labels_path) if labels is not None else {}
    inside_out = dst_root.resolve().is_relative_to(src_root.resolve())
    files = sorted(
        p
        for p in src_root.rglob("*")
        if p.suffix.lower() in CROP_SUFFIXES
        and p.is_file()
        and not (inside_out and p.resolve().is_relative_to(dst_root.resolve()))
    )
    rows: list[dict[str, object]] = []
    thumbs: list[_Thumb] = []
    for path in track(files, "cropping", total=len(files), enabled=progress):
        name = path.relative_to(src_root).as_posix()
        try:
            raw = read_image(path)
            box = locate_patch(raw.array)
        except DataError as err:
            reason = str(err) if str(path) in str(err) else f"{path}: {err}"
            warnings.warn(f"skipped {reason}", stacklevel=2)
            continue
        crop = crop_with_context(raw.array, box, context)
        _write_crop(path, dst_root / name, crop)
        x0, y0, x1, y1 = box.as_tuple()
        rows.append(
            {"image": name, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "context": context,
             "width": crop.shape[1], "height": crop.shape[0]}
        )  # fmt: skip
        if sheet and len(thumbs) < 48:
            thumbs.append(_thumbnail(raw.array, box, context, truth.get(name), name))
    table = pd.DataFrame(rows, columns=_CROP_COLUMNS)
    atomic_write_bytes(dst_root / "crops.csv", table.to_csv(index=False).encode("utf-8"))
    if labels is not None:
        found = table.set_index("image")
        out = labels[labels["image"].isin(found.index)].copy()
        if truth:
            out["iou"] = [
                Box(*(int(found.at[n, c]) for c in ("x0", "y0", "x1", "y1"))).iou(truth[n])
                for n in out["image"]
            ]
        atomic_write_bytes(dst_root / "labels.csv", out.to_csv(index=False).encode("utf-8"))
    if sheet:
        _draw_sheet(thumbs, dst_root / "contact_sheet.png")
    return table
