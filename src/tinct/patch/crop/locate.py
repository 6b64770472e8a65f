"""Finding and cropping a uniform colour target (a skin-coloured patch on a card) in a photo.

:func:`locate_patch` looks for where the colour is *flat*, not for a given colour, so it works under any
colour cast and exposure: it scores the uniform regions of a reduced working copy
(:mod:`tinct.patch.crop.regions`, steps 1 to 3) and moves each side of the winner to the patch edge at
full resolution (:mod:`tinct.patch.crop.refine`, step 4). The result is a :class:`Box`;
:func:`crop_with_context` cuts it out and :func:`locate_patches` searches a list of files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinct.core.exceptions import DataError, ShapeError, TypeCheckError
from tinct.core.progress import track
from tinct.io.image import read_image
from tinct.patch.crop.refine import _refine
from tinct.patch.crop.regions import _best_candidate, _weighted_lab

__all__ = ["Box", "crop_with_context", "locate_patch", "locate_patches"]

_WORK_SIDE = 256  # longer side of the working copy for the search (px)


@dataclass(frozen=True)
class Box:
    """An axis-aligned pixel box; ``x1`` and ``y1`` are exclusive, so ``image[y0:y1, x0:x1]`` is inside.

    Example:
        >>> a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
        >>> a.area, round(a.iou(b), 4)
        (100, 0.3333)
        >>> a.expand(3, width=12, height=40).as_tuple()
        (0, 0, 12, 13)
    """

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeCheckError(f"Box.{name}: expected an int, got {type(value).__name__}")
            object.__setattr__(self, name, int(value))
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"Box needs x0 <= x1 and y0 <= y1, got {self.as_tuple()}")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` in [0, 1] (0 when both are empty)."""
        iw = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        ih = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = iw * ih
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def expand(self, px: int, width: int, height: int) -> Box:
        """The box grown by ``px`` (>= 0) on every side and clipped to a ``width`` x ``height`` image."""
        if px < 0:
            raise ValueError(f"expand: px must be >= 0, got {px}")
        x0, y0 = min(max(self.x0 - px, 0), width), min(max(self.y0 - px, 0), height)
        return Box(x0, y0, max(min(self.x1 + px, width), x0), max(min(self.y1 + px, height), y0))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)


def _as_float_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ShapeError(f"image: expected shape (H, W, 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(1 / 255)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) * np.float32(1 / 65535)
    if arr.dtype.kind != "f":
        raise TypeCheckError(f"image: expected uint8, uint16 or float in [0, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("image: contains NaN or inf values")
    return np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)


def locate_patch(image: np.ndarray, *, margin: float = 0.0) -> Box:
    """Find the uniform target patch (a colour chip lying on a card) in a photo.

    The method is described in :mod:`tinct.patch.crop.regions` and :mod:`tinct.patch.crop.refine`:
    low-gradient connected components scored for
    rectangularity, contrast to their surround, plainness of that surround, size and centrality, then each
    side refined at full resolution on per-line medians, so outlier spots cannot move it and shadow
    penumbrae are not included.

    Args:
        image: ``(H, W, 3)`` sRGB-encoded image, ``uint8`` (or ``uint16``) or float in [0, 1].
        margin: fraction of the found box's width (height) removed from each side, in [0, 0.5);
            0 returns the whole patch, e.g. 0.1 keeps the central 80 %.

    Returns:
        The patch's :class:`Box` in pixel coordinates of ``image``.

    Raises:
        DataError: no plausible uniform patch is found (a featureless, pure-noise or patch-less image).
        ShapeError: ``image`` is not ``(H, W, 3)``.
        TypeCheckError: ``image`` is neither 8/16-bit nor float.

    Example:
        >>> card = np.full((120, 160, 3), 120, np.uint8)
        >>> card[20:100, 30:130] = 200  # a white border...
        >>> card[26:94, 36:124] = 110  # ...around a grey interior
        >>> card[40:75, 62:100] = (190, 130, 105)  # the skin-coloured patch
        >>> locate_patch(card)
        Box(x0=62, y0=40, x1=100, y1=75)
        >>> locate_patch(card, margin=0.1)
        Box(x0=66, y0=44, x1=96, y1=71)
    """
    import cv2

    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    rgb = _as_float_rgb(image)
    h_img, w_img = rgb.shape[:2]
    if min(h_img, w_img) < 16:
        raise DataError(f"no uniform patch found: image of shape {rgb.shape} is too small (< 16 px)")
    scale = min(1.0, _WORK_SIDE / max(h_img, w_img))
    if scale < 1.0:
        size = (max(16, round(w_img * scale)), max(16, round(h_img * scale)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        sx, sy = w_img / size[0], h_img / size[1]
    else:
        work, sx, sy = rgb, 1.0, 1.0
    best = _best_candidate(_weighted_lab(work))
    if best is None:
        raise DataError(
            f"no uniform patch found in an image of shape {rgb.shape}: no flat, rectangular region "
            "that stands out from its surround"
        )
    bx0, by0, bx1, by1 = best.box
    box = (math.ceil(bx0 * sx), math.ceil(by0 * sy), math.floor(bx1 * sx), math.floor(by1 * sy))
    box = (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))
    # the component lies about a gradient band (~3 pixels of its level) inside the patch edge
    pixel = best.pixel * max(sx, sy)
    reach_in = max(6, math.ceil(4 * pixel))
    reach_out = math.ceil(5 * pixel) + 2
    for _ in range(3):
        box, hit = _refine(rgb, box, best.contrast, reach_in, reach_out)
        if not hit:
            break
    x0, y0, x1, y1 = box
    dx, dy = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    x0, y0, x1, y1 = x0 + dx, y0 + dy, max(x1 - dx, x0 + dx + 1), max(y1 - dy, y0 + dy + 1)
    return Box(x0, y0, x1, y1)


def crop_with_context(image: np.ndarray, box: Box, context: int = 0) -> np.ndarray:
    """The pixels of ``box`` grown by ``context`` px on every side, clipped to the image (a view, not a copy).

    Args:
        image: ``(H, W, ...)`` array.
        box: the region, in pixel coordinates of ``image``.
        context: margin of surrounding pixels kept on each side (>= 0).

    Returns:
        ``image[y0:y1, x0:x1]`` of the grown, clipped box.
    """
    arr = np.asarray(image)
    if arr.ndim < 2:
        raise ShapeError(f"image: expected shape (H, W, ...), got {arr.shape}")
    b = box.expand(context, arr.shape[1], arr.shape[0])
    return arr[b.y0 : b.y1, b.x0 : b.x1]


def locate_patches(paths: Sequence[Path], progress: bool = True) -> dict[Path, Box]:
    """:func:`locate_patch` on each image file, failing on the first bad one (the training pipeline's use).

    Args:
        paths: image files (anything :func:`tinct.io.image.read_image` reads).
        progress: show a progress bar (on a terminal only).

    Returns:
        ``{path: box}`` in the order of ``paths``.

    Raises:
        DataError: a file is missing or unreadable, or holds no patch; the message names the file. A
            training set with a bad file is an error to fix; :func:`~tinct.patch.crop.crop_folder`, a
            batch tool, instead warns and skips such files.
    """
    boxes: dict[Path, Box] = {}
    for p in track([Path(q) for q in paths], "locating patches", enabled=progress):
        raw = read_image(p)  # its DataError names the file
        try:
            boxes[p] = locate_patch(raw.array)
        except DataError as err:
            raise DataError(f"{p}: {err}") from err
    return boxes
