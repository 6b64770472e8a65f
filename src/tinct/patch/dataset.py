"""The torch data set of a patch table: crops with their CIELAB target, metadata and colour statistics.

:class:`PatchDataset` yields square crops around each patch of a :class:`tinct.patch.labels.PatchTable`
plus robust colour statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tinct.core.exceptions import DataError
from tinct.patch.labels import PatchTable

__all__ = ["PatchDataset"]


class PatchDataset(Dataset[dict[str, Tensor]]):
    """Square crops around each patch with its CIELAB target, metadata and robust colour statistics.

    The crop is the tight patch box grown by ``context`` pixels per side (clipped to the image), resized to
    ``size x size`` (bilinear with antialiasing, on sRGB-encoded values). Images are read with
    :func:`tinct.io.image.read_image` and taken as sRGB-encoded whatever their bit depth (as
    :mod:`tinct.colorization.photos`); boxes are in the stored pixel grid (EXIF Orientation is not applied).

    Each sample is a dict:

    - ``image``: ``(3, size, size)`` float32 sRGB in [0, 1];
    - ``lab``: ``(3,)`` float32 CIELAB target;
    - ``meta``, ``meta_mask``: ``(4,)`` float32 :data:`~tinct.patch.labels.META_FEATURES` (0 where
      unknown) and bool known-mask;
    - ``camera``: long, ``camera_index[camera]`` (0 = unknown camera or no index; give known cameras ids from 1);
    - ``stats``: ``(12,)`` float32, on linear RGB: per-channel median and median absolute deviation (not
      scaled) of the tight box shrunk by 10 % per side, then per-channel median and 95th percentile of the
      context ring (crop minus tight box); zeros for the ring when ``context == 0`` or the ring is empty;
    - ``index``: long row position in the table.

    Args:
        data: the patch table.
        indices: the table rows this data set serves (e.g. one split of
            :func:`~tinct.patch.splits.split_patches`).
        boxes: image name -> tight box ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive; None: the
            whole image is the patch.
        size: output side in pixels.
        context: pixels of surround added on each side of the box.
        camera_index: camera name -> id (ids from 1).
        cache: keep prepared samples in memory after the first read (per process: each DataLoader worker
            has its own cache).

    Raises:
        DataError: a box is missing for an image, malformed or outside its image, or an image is unreadable
            (the file is named).
        IndexError: an index outside the table.
    """

    def __init__(
        self,
        data: PatchTable,
        indices: Sequence[int],
        *,
        boxes: Mapping[str, tuple[int, int, int, int]] | None,
        size: int = 64,
        context: int = 0,
        camera_index: Mapping[str, int] | None = None,
        cache: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        n = len(data)
        self.indices = [int(i) for i in indices]
        outside = [i for i in self.indices if not 0 <= i < n]
        if outside:
            raise IndexError(f"row index {outside[0]} outside the table of {n} rows")
        self.data = data
        self.size = size
        self.context = context
        self.cache = cache
        table = data.table
        self._names = [str(x) for x in table["image"]]
        if boxes is not None:
            missing = [self._names[i] for i in self.indices if self._names[i] not in boxes]
            if missing:
                raise DataError(
                    f"{data.root}: no patch box for {len(missing)} image(s): "
                    + ", ".join(map(repr, missing[:3]))
                    + (", ..." if len(missing) > 3 else "")
                )
            for i in self.indices:
                _check_box(boxes[self._names[i]], data.root / self._names[i])
        self.boxes = boxes
        feats, mask = data.meta_features()
        self._meta = torch.from_numpy(feats)
        self._mask = torch.from_numpy(mask)
        self._lab = torch.from_numpy(table[["L", "a", "b"]].to_numpy(np.float32, copy=True))
        index = camera_index or {}
        self._camera = [int(index.get(str(c), 0)) for c in table["camera"]]
        self._cache: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        row = self.indices[i]
        sample = self._cache.get(row)
        if sample is None:
            sample = self._load(row)
            if self.cache:
                self._cache[row] = sample
        return {k: v.clone() for k, v in sample.items()}

    def _load(self, row: int) -> dict[str, Tensor]:
        from tinct.io.image import RawImage, read_image, to_tensor_image

        path = self.data.root / self._names[row]
        try:
            raw = read_image(path)
        except DataError:
            raise
        except Exception as err:  # OpenCV and numpy raise several types for corrupt files
            raise DataError(f"{path}: cannot read image ({err})") from err
        h, w = raw.array.shape[:2]
        box = (0, 0, w, h) if self.boxes is None else tuple(int(v) for v in self.boxes[self._names[row]])
        x0, y0, x1, y1 = box
        if x1 > w or y1 > h:
            raise DataError(f"{path}: patch box {box} is outside the {w}x{h} image")
        c = self.context
        cx0, cy0, cx1, cy1 = max(0, x0 - c), max(0, y0 - c), min(w, x1 + c), min(h, y1 + c)
        stored = raw.array[cy0:cy1, cx0:cx1]
        crop = to_tensor_image(RawImage(path, stored, raw.white_level, raw.linear))
        resized = F.interpolate(
            crop[None], size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        linear = _linear(stored, crop)
        return {
            "image": resized.contiguous(),
            "lab": self._lab[row],
            "meta": self._meta[row],
            "meta_mask": self._mask[row],
            "camera": torch.tensor(self._camera[row], dtype=torch.long),
            "stats": _patch_stats(linear, (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0), c > 0),
            "index": torch.tensor(row, dtype=torch.long),
        }


@functools.cache
def _srgb_lut(levels: int) -> np.ndarray:
    """srgb_to_linear of every code value ``k / (levels - 1)`` (the values to_tensor_image produces)."""
    from tinct.color.rgb import srgb_to_linear

    codes = torch.arange(levels, dtype=torch.float32) / float(levels - 1)
    return srgb_to_linear(codes[:, None].expand(levels, 3), dim=-1)[:, 0].numpy()


def _linear(stored: np.ndarray, encoded: Tensor) -> np.ndarray:
    """Linear RGB ``(3, h, w)`` of a crop: a table look-up for 8/16-bit files, else srgb_to_linear."""
    if stored.dtype in (np.uint8, np.uint16):
        return _srgb_lut(int(np.iinfo(stored.dtype).max) + 1)[stored].transpose(2, 0, 1)
    from tinct.color.rgb import srgb_to_linear

    return srgb_to_linear(encoded).numpy()


def _check_box(box: object, path: Path) -> None:
    try:
        x0, y0, x1, y1 = (int(v) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise DataError(f"{path}: patch box must be 4 integers (x0, y0, x1, y1), got {box!r}") from None
    if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
        raise DataError(f"{path}: patch box {box!r} must have 0 <= x0 < x1 and 0 <= y0 < y1")


def _patch_stats(arr: np.ndarray, box: tuple[int, int, int, int], ring: bool) -> Tensor:
    """Median and MAD of the shrunk tight box, then median and p95 of the ring (or zeros), per channel."""
    x0, y0, x1, y1 = box
    dx, dy = int(0.1 * (x1 - x0)), int(0.1 * (y1 - y0))
    inner = arr[:, y0 + dy : y1 - dy, x0 + dx : x1 - dx].reshape(3, -1)
    med = np.median(inner, axis=1)
    mad = np.median(np.abs(inner - med[:, None]), axis=1)
    out = np.zeros(12, np.float32)
    out[:3], out[3:6] = med, mad
    if ring:
        keep = np.ones(arr.shape[1:], bool)
        keep[y0:y1, x0:x1] = False
        if keep.any():
            around = arr[:, keep]
            out[6:9] = np.median(around, axis=1)
            out[9:12] = np.percentile(around, 95, axis=1)
    return torch.from_numpy(out)
