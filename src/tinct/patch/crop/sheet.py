"""Contact sheets: a PNG grid of thumbnails with each image's found, context and true boxes drawn on it."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinct.patch.crop.locate import Box

__all__ = ["contact_sheet"]


@dataclass(frozen=True)
class _Thumb:
    """One contact-sheet cell: a small image and its boxes in its own coordinates."""

    image: np.ndarray
    box: Box
    context_box: Box | None
    true_box: Box | None
    title: str


def _thumbnail(
    image: np.ndarray, box: Box, context: int, true_box: Box | None, title: str, side: int = 256
) -> _Thumb:
    import cv2

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        white = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "iu" else 1.0
        arr = np.clip(arr.astype(np.float32) / np.float32(white), 0.0, 1.0)
    h, w = arr.shape[:2]
    ctx = box.expand(context, w, h) if context > 0 else None
    if true_box is not None:
        title = f"{title}  IoU {box.iou(true_box):.2f}".strip()
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)

        def shrink(b: Box | None) -> Box | None:
            if b is None:
                return None
            return Box(*(round(v * scale) for v in b.as_tuple()))

        box, ctx, true_box = shrink(box), shrink(ctx), shrink(true_box)  # type: ignore[assignment]
    return _Thumb(arr, box, ctx, true_box, title)


def _draw_sheet(thumbs: Sequence[_Thumb], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(thumbs)
    cols = max(1, min(8, math.ceil(math.sqrt(n))))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.0 * rows), squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, t in zip(axes.flat, thumbs, strict=False):
            ax.imshow(t.image, interpolation="nearest")
            for b, colour, style in (
                (t.box, "lime", "-"),
                (t.context_box, "yellow", "--"),
                (t.true_box, "magenta", ":"),
            ):
                if b is not None:
                    xy = (b.x0 - 0.5, b.y0 - 0.5)
                    ax.add_patch(
                        Rectangle(xy, b.width, b.height, fill=False, edgecolor=colour, linestyle=style)
                    )
            ax.set_title(t.title, fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=100)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return path


def contact_sheet(
    images: Sequence[np.ndarray],
    boxes: Sequence[Box],
    path: str | os.PathLike[str],
    *,
    context: int = 0,
    true_boxes: Sequence[Box | None] | None = None,
    titles: Sequence[str] | None = None,
    max_images: int = 48,
) -> Path:
    """A PNG grid of thumbnails showing each found box, its context box and the true box when known.

    The found box is drawn solid green, the context box (when ``context > 0``) dashed yellow, the true box
    dotted magenta with the IoU in the title. The file is written atomically (a temporary file in the same
    folder, then a rename).

    Args:
        images: ``(H, W, 3)`` images, ``uint8``, ``uint16`` or float in [0, 1].
        boxes: the found box of each image.
        path: the PNG to write.
        context: the context margin in pixels.
        true_boxes: the true box of each image, or ``None`` where unknown.
        titles: a title for each image.
        max_images: at most this many (the first) images are shown.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if len(images) != len(boxes):
        raise ValueError(f"contact_sheet: {len(images)} images but {len(boxes)} boxes")
    for what, seq in (("true_boxes", true_boxes), ("titles", titles)):
        if seq is not None and len(seq) != len(images):
            raise ValueError(f"contact_sheet: {len(images)} images but {len(seq)} {what}")
    n = min(len(images), max_images)
    thumbs = [
        _thumbnail(
            images[i],
            boxes[i],
            context,
            true_boxes[i] if true_boxes is not None else None,
            titles[i] if titles is not None else "",
        )
        for i in range(n)
    ]
    return _draw_sheet(thumbs, Path(path))
