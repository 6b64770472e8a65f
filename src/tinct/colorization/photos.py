"""Folders of ordinary (display-encoded sRGB) photos: listing, robust reading, splits, training crops.

Used by colorization. Unlike camera raw data, 8- and 16-bit photos are sRGB-encoded, so every file is
scaled by its white level (255 or 65535) and kept in sRGB. Grayscale files are expanded to three equal
channels, palette files are expanded to RGB and alpha is dropped (OpenCV does both); :func:`describe_mode`
says which conversion happened so callers can tell the user.

The embedded default is the set of colour photos that ship with scikit-image (:func:`skimage_photos`), so
the quickstart and tests need no download.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tinct.core.exceptions import DataError
from tinct.io.image import RawImage, read_image

__all__ = [
    "PHOTO_SUFFIXES",
    "PhotoCrops",
    "PhotoImages",
    "describe_mode",
    "list_photos",
    "load_photos",
    "photo_array",
    "read_photo",
    "resize_short_side",
    "skimage_photos",
    "split_photos",
]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

# Colour photographs of everyday scenes bundled inside scikit-image's wheel (no pooch download): a
# portrait, a cat, food, a launch pad at dusk, a motorbike. Its microscopy (ihc), retina and deep-field
# images are left out: a colorizer of photos has nothing to learn from them and cannot be judged on them.
_SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
)


def skimage_photos() -> list[Path]:
    """Paths of the colour photos bundled with scikit-image (the embedded default data set)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    paths = [folder / name for name in _SKIMAGE_PHOTOS if (folder / name).is_file()]
    if not paths:
        raise DataError(f"{folder}: scikit-image's bundled sample photos are missing")
    return paths


def list_photos(root: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``root`` (recursive, sorted; jpg, png, tif, bmp), or ``[root]`` for a file."""
    p = Path(root)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(f"{p}: no such photo folder or file")
    return sorted(q for q in p.rglob("*") if q.suffix.lower() in PHOTO_SUFFIXES and q.is_file())


def read_photo(path: str | os.PathLike[str]) -> np.ndarray:
    """An sRGB photo as an ``H x W x 3`` float32 array in [0, 1] (8- or 16-bit, any channel layout).

    The photo is turned upright by its EXIF orientation and an 8-bit file's ICC profile is converted to
    sRGB (:func:`tinct.io.image.read_image`, whose ``RawImage.notes`` say so).

    Raises:
        DataError: missing, unreadable or corrupt file (named).
    """
    return photo_array(read_image(path))


def photo_array(raw: RawImage) -> np.ndarray:
    """An image as read (:func:`tinct.io.image.read_image`) as an sRGB ``H x W x 3`` float32 array in [0, 1]."""
    return (raw.array.astype(np.float32) / np.float32(raw.white_level)).clip(0.0, 1.0)


def describe_mode(
    path: str | os.PathLike[str], array: np.ndarray | None = None, notes: Sequence[str] = ()
) -> str | None:
    """A note on how a file was converted to RGB (grayscale, palette, alpha), or None for plain RGB.

    ``notes`` (e.g. :attr:`tinct.io.image.RawImage.notes`: EXIF rotation, ICC conversion) come first.
    """
    found: list[str] = []
    try:
        from PIL import Image

        with Image.open(path) as im:
            mode = im.mode
        if mode == "P":
            found.append("palette image converted to RGB")
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
            found.append("alpha channel dropped")
        if mode in ("L", "LA", "I", "I;16", "1", "F"):
            found.append("grayscale image: no reference colours")
    except Exception:
        pass
    if not found and array is not None and array.ndim == 3:
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]):
            found.append("grayscale image: no reference colours")
    return "; ".join([*notes, *found]) or None


def resize_short_side(image: np.ndarray, short: int) -> np.ndarray:
    """Resize an ``H x W x C`` array so its shorter side is ``short`` (area averaging when shrinking)."""
    import cv2

    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, size, interpolation=interp)
    return out.reshape(size[1], size[0], *image.shape[2:])


def load_photos(
    paths: Sequence[Path], short_side: int | None = None, *, strict: bool = False
) -> tuple[list[np.ndarray], list[Path]]:
    """Read photos (optionally resized to ``short_side``) as uint8 ``H x W x 3`` arrays.

    Corrupt files are skipped with a warning naming each of them (``strict=True``: raise instead), so one
    bad file does not stop a long job.

    Returns:
        The arrays and the paths that were read.
    """
    images, kept, bad = [], [], []
    for path in paths:
        try:
            image = read_photo(path)
        except DataError as err:
            if strict:
                raise
            bad.append(str(err))
            continue
        if short_side:
            image = resize_short_side(image, short_side)
        images.append(np.round(image * 255.0).astype(np.uint8))
        kept.append(path)
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable photo(s): " + "; ".join(bad), stacklevel=2)
    return images, kept


def split_photos(
    paths: Sequence[Path], val_fraction: float, test_fraction: float, seed: int = 0
) -> dict[str, list[Path]]:
    """Deterministic train / val / test split of photo paths.

    Each file goes to a split by a hash of its name (relative to the common folder) and the seed, so the
    split of a file never changes when files are added to or removed from the folder.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction and test_fraction must be in [0, 1) with a sum < 1, got {val_fraction}, {test_fraction}"
        )
    paths = list(paths)
    common = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else Path()
    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for p in paths:
        key = f"{seed}:{p.relative_to(common).as_posix()}".encode()
        u = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0**64
        split = "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        out[split].append(p)
    return out


class PhotoCrops(Dataset[dict[str, Tensor]]):
    """Random square crops (and horizontal flips) of in-memory photos, as sRGB float tensors (3, S, S).

    ``samples_per_epoch`` crops are drawn per epoch (default: one per photo); photos smaller than the crop
    are upscaled first. Randomness comes from torch's generator, so Lightning's seeding makes it repeatable.
    """

    def __init__(
        self, images: Sequence[np.ndarray], crop: int, flip: bool = True, samples_per_epoch: int | None = None
    ) -> None:
        if not images:
            raise DataError("no photos to train on")
        self.images = [_at_least(im, crop) for im in images]
        self.crop = crop
        self.flip = flip
        self.n = samples_per_epoch or len(self.images)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.images[index % len(self.images)]
        h, w = image.shape[:2]
        top = int(torch.randint(0, h - self.crop + 1, ()))
        left = int(torch.randint(0, w - self.crop + 1, ()))
        patch = image[top : top + self.crop, left : left + self.crop]
        if self.flip and bool(torch.rand(()) < 0.5):
            patch = patch[:, ::-1]
        return {"image": _to_tensor(patch)}


class PhotoImages(Dataset[dict[str, Tensor]]):
    """Centre square crops of side ``size`` of in-memory photos (validation and test batches)."""

    def __init__(self, images: Sequence[np.ndarray], size: int) -> None:
        if not images:
            raise DataError("no photos to evaluate on")
        self.images = [_at_least(im, size) for im in images]
        self.size = size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.images[index]
        h, w = image.shape[:2]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return {"image": _to_tensor(image[top : top + self.size, left : left + self.size])}


def _at_least(image: np.ndarray, size: int) -> np.ndarray:
    return resize_short_side(image, size) if min(image.shape[:2]) < size else image


def _to_tensor(patch: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float().div_(255.0)
