"""Finding and cropping a uniform colour target (a skin-coloured patch on a card) in a photo.

:func:`locate_patch` looks for where the colour is *flat*, not for a given colour, so it works under any
colour cast and exposure. Colour distances are Euclidean in CIELAB (sRGB input, D65) with L* weighted by
one half ("units" below), because shading, vignetting and shadows move lightness far more than a* and b*.

1. **Working copy and pyramid.** The image is reduced by area averaging so its longer side is at most
   256 px, and halved again while the shorter side keeps 24 px (160 x 120 gives three levels): noisy
   photos need the averaging of the small levels, clean ones the detail of the large.
2. **Uniform regions.** On each level a 3 x 3 median (speckle) and a Gaussian blur (sigma 1 px) precede
   the Sobel gradient magnitude of the three channels, which is thresholded at 0.6, 1, 1.5, 2.5, 4 and 6
   times its median over the level (the median pixel of a photo lies in a flat region, so the median
   measures the noise), within [0.1, 8] units per pixel. No single threshold suits every photo: a
   low-contrast or JPEG-softened edge merges with the card at a high one, a noisy patch breaks up at a low
   one. Each mask is split into 4-connected components; those touching the image border, covering under
   0.2 % or over half of the level, thinner than 1:4 or filling under 40 % of their bounding box go.
3. **Scoring.** A component's colour and spread are the median of its (smoothed) pixels and their median
   distance to it; its surround is a ring around its bounding box (2 px gap for the edge, width 15 % of
   the shorter side, at least 3 px). It must differ from the ring's median colour by 3 units and by 3
   spreads. Its score multiplies, all in [0, 1] but the first:

   - a prior, ``log(1 + 400 area / image area)`` times a Gaussian preference for the centre (sigma 0.35
     of the width and height);
   - rectangularity: the squared solidity (the component with its holes filled, over its bounding box;
     spot halos are holes, round blobs of smooth noise score about 0.6) and the squared fraction of the
     box near the component's colour;
   - distinctness ``c / (c + 8)`` with ``c = hypot(delta ab, delta L / 2)`` against the ring: chroma counts
     most, so the chromatic patch on a grey card beats the neutral card inside its neutral border (a
     signed "more saturated than the surround" term was tried and dropped: under a cast opposite to skin
     hue the grey card is the more saturated one);
   - plainness inside, ``contrast / (contrast + 4 spread)``, and of the ring (its fraction within the
     larger of 4 units and 4 spreads of its median): a target lies on a plain card, clutter on clutter.

   The prior bounds the score, so candidates are scored best-prior first until it falls below the best
   score so far (branch and bound), and equal boxes from neighbouring thresholds and levels once. The
   target lies *on* a card, so a winner containing a distinct-coloured candidate (the card interior around
   the patch, a rectangle on a rectangle) gives way to the best one inside it. Below a score of 0.35
   there is no patch, and :class:`DataError` is raised (target patches score 0.5 and more in synthetic
   photos, smooth or white noise at most 0.31).
4. **Refinement at full resolution.** The winning component lies a gradient band inside the true patch.
   Near it, after a 3 x 3 median (against noise; a median leaves straight edges in place), each pixel's
   distance to the patch colour (the median over that box) is computed, and each side is reduced to a
   profile across its edge: for each column (row), the *median* over the side's length less 1/8 at each
   end, then smoothed by ``[1, 2, 1] / 4`` (symmetric, so it leaves a blurred step's midpoint in place).
   An outlier spot (specular highlight, dust) covers a few pixels of a line and cannot move that
   median, so spots neither shrink nor shift the box, with no per-pixel outlier rejection needed. Along
   the profile, the first entry rising above the inside level by six robust standard deviations (MAD of
   the profile inside the box), 2 units and 30 % of the patch's contrast to its ring (but never more than
   50 % of it) marks the edge, which is placed where the profile crosses the midpoint of the steepest
   monotone rise there: the centre of a blurred step. As its levels are read on that rise alone, a
   shadow's penumbra (a slow rise) or the card's border further out cannot pull the edge outwards. A side
   that finds no edge in its window searches again from the grown box (three passes at most).

:func:`crop_folder` applies this to a folder tree (the ``tinct data crop`` command), keeping each file's
EXIF block, and writes the table of boxes, the labels of the cropped images with the IoU against true
boxes when those are known, and a contact sheet.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinct.core.atomic import atomic_write_bytes
from tinct.core.exceptions import DataError, ShapeError, TypeCheckError
from tinct.core.progress import track
from tinct.io.image import read_image

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CROP_SUFFIXES",
    "Box",
    "contact_sheet",
    "crop_folder",
    "crop_with_context",
    "locate_patch",
    "locate_patches",
]

CROP_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

_WORK_SIDE = 256  # longer side of the working copy for the search (px)
_SMOOTH_SIGMA = 1.0  # Gaussian blur before the gradient, working px
_THRESHOLD_FACTORS = (0.6, 1.0, 1.5, 2.5, 4.0, 6.0)  # multiples of the median gradient defining "uniform"
_MIN_THRESHOLD = 0.1  # ... and at least this (a noise-free rendering has a median gradient of 0)
_MAX_THRESHOLD = 8.0  # weighted-Lab units per px: steeper is never uniform, however noisy the image
_L_WEIGHT = 0.5  # lightness counts half: shading and shadows change L* far more than a*, b*
_MAX_SAMPLES = 400  # pixels per median (a regular subsample beyond that)
_MIN_FILL = 0.4  # component area / bounding-box area
_MAX_ASPECT = 4.0
_MIN_LEVEL_SIDE = 24  # a half-size level is added while it keeps at least this many pixels per side
_MAX_NESTED = 0.5  # a candidate inside another covers at most this fraction of its bounding box
_MIN_SEPARATION = 3.0  # contrast to the ring, in units of the candidate's own spread
_MIN_CONTRAST = 3.0  # weighted-Lab units
_CENTRE_SIGMA = 0.35  # of the image width and height, for the preference for central candidates
_MIN_SCORE = 0.35  # synthetic photos' target patches score >= 0.5, smooth or white noise <= 0.31
_STEP_SIGMAS = 6.0  # a profile step must exceed this many robust standard deviations of the patch
_MIN_STEP = 2.0  # ... and this many weighted-Lab units
_STEP_FRACTION = 0.3  # ... and this fraction of the patch's contrast to its surround,
_MAX_STEP_FRACTION = 0.5  # ... but at most this fraction (noise cannot hide an edge the profile must cross)


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


def _weighted_lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)
    lab[:, :, 0] *= _L_WEIGHT
    return lab


@dataclass(frozen=True)
class _Candidate:
    box: tuple[int, int, int, int]  # working-copy coordinates, x1/y1 exclusive
    score: float
    colour: np.ndarray  # median weighted Lab of the component (smoothed)
    contrast: float  # distance of that colour to the median colour of the ring around it
    spread: float  # median distance of the component's pixels to its colour
    pixel: float  # size of a pixel of its pyramid level, in working-copy pixels


def _thin(pixels: np.ndarray, at_most: int = _MAX_SAMPLES) -> np.ndarray:
    """Every n-th pixel so at most ``at_most`` remain: medians of a uniform region need no more."""
    return pixels[:: len(pixels) // at_most + 1] if len(pixels) > at_most else pixels


def _robust_centre(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    pixels = _thin(pixels)
    centre = np.median(pixels, axis=0)
    spread = float(np.median(np.linalg.norm(pixels - centre, axis=1)))
    return centre, spread


def _prior(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Size and centrality factors of the score for components ``stats`` (rows ``x, y, w, h, area``)."""
    h_img, w_img = shape
    x, y, w, h, area = (stats[:, i].astype(np.float64) for i in range(5))
    size = np.log1p(400.0 * area / (h_img * w_img))
    dx = (x + w / 2 - w_img / 2) / (_CENTRE_SIGMA * w_img)
    dy = (y + h / 2 - h_img / 2) / (_CENTRE_SIGMA * h_img)
    return size * np.exp(-0.5 * (dx * dx + dy * dy))


@dataclass(frozen=True)
class _Level:
    """One thresholded mask of one pyramid level: smoothed image, components, scale to the working copy."""

    smooth: np.ndarray
    labels: np.ndarray
    stats: np.ndarray
    sx: float
    sy: float

    def to_work(self, k: int) -> tuple[int, int, int, int]:
        """Component ``k``'s bounding box in working-copy pixels (rounded inwards)."""
        x, y, w, h = (int(v) for v in self.stats[k, :4])
        x0, y0 = math.ceil(x * self.sx - 1e-6), math.ceil(y * self.sy - 1e-6)
        return (
            x0,
            y0,
            max(math.floor((x + w) * self.sx + 1e-6), x0 + 1),
            max(math.floor((y + h) * self.sy + 1e-6), y0 + 1),
        )


def _levels(lab: np.ndarray) -> list[_Level]:
    """Thresholded low-gradient masks of the working copy and of its successive half-size copies."""
    import cv2

    h_work, w_work = lab.shape[:2]
    # noisy photos need the stronger averaging of smaller copies (each halves the noise)
    images = [lab]
    while min(images[-1].shape[:2]) >= 2 * _MIN_LEVEL_SIDE:
        h, w = images[-1].shape[:2]
        images.append(cv2.resize(images[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    out = []
    for image in images:
        smooth = cv2.GaussianBlur(cv2.medianBlur(image, 3), (0, 0), _SMOOTH_SIGMA)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        grad = np.sqrt((gx * gx + gy * gy).sum(axis=2))
        noise = float(np.median(grad))
        sx, sy = w_work / image.shape[1], h_work / image.shape[0]
        for factor in _THRESHOLD_FACTORS:
            mask = (grad < min(max(factor * noise, _MIN_THRESHOLD), _MAX_THRESHOLD)).astype(np.uint8)
            _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            out.append(_Level(smooth, labels, stats, sx, sy))
    return out


def _solidity(component: np.ndarray) -> float:
    """Fraction of the bounding box (``component``'s shape) covered by the component with its holes filled."""
    import cv2

    h, w = component.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats((~component).astype(np.uint8), connectivity=4)
    x, y, bw, bh, area = stats[1:n].T
    holes = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)  # background not reaching the box edge
    return (int(component.sum()) + int(area[holes].sum())) / (h * w)


def _score(level: _Level, k: int, bound: float, floor: float) -> _Candidate | float | None:
    """Score component ``k`` of a level's mask.

    Returns the candidate; ``None`` if it is no plausible target; or, as soon as its score is known to
    stay below ``floor``, a float bound on that score (the cheap factors come first).
    """
    lab, labels = level.smooth, level.labels
    h_img, w_img = labels.shape
    x, y, w, h = (int(v) for v in level.stats[k, :4])
    component = labels[y : y + h, x : x + w] == k
    bound *= _solidity(component) ** 2
    if bound < floor:
        return bound
    colour, spread = _robust_centre(lab[y : y + h, x : x + w][component])
    gap, ring = 2, max(3, round(0.15 * min(w, h)))
    ox0, oy0 = max(x - gap - ring, 0), max(y - gap - ring, 0)
    ox1, oy1 = min(x + w + gap + ring, w_img), min(y + h + gap + ring, h_img)
    keep = np.ones((oy1 - oy0, ox1 - ox0), bool)
    keep[max(y - gap - oy0, 0) : y + h + gap - oy0, max(x - gap - ox0, 0) : x + w + gap - ox0] = False
    around = lab[oy0:oy1, ox0:ox1][keep]
    if len(around) < 8:
        return None
    around = _thin(around)
    ring_colour = np.median(around, axis=0)
    diff = colour - ring_colour
    contrast = float(np.linalg.norm(diff))
    if contrast < max(_MIN_CONTRAST, _MIN_SEPARATION * spread):
        return None
    chroma_contrast = math.hypot(float(np.hypot(diff[1], diff[2])), 0.5 * float(diff[0]))
    bound *= chroma_contrast / (chroma_contrast + 8.0)  # distinct, chroma first
    bound *= contrast / (contrast + 4.0 * spread)  # plain inside
    if bound < floor:
        return bound
    plain_ring = float(np.mean(np.linalg.norm(around - ring_colour, axis=1) < max(4.0, 4.0 * spread)))
    # rectangularity by colour too: a spot's gradient halo is a hole in the mask, not in the colour
    box_dist = np.linalg.norm(lab[y : y + h, x : x + w] - colour, axis=2)
    fill = float(np.mean(box_dist < max(3.0 * spread, 0.35 * contrast)))
    return _Candidate(
        level.to_work(k), bound * plain_ring * fill**2, colour, contrast, spread, max(level.sx, level.sy)
    )


def _best_candidate(lab: np.ndarray) -> _Candidate | None:
    """The best-scoring uniform region of a working copy (weighted Lab), or ``None`` below ``_MIN_SCORE``."""
    levels = _levels(lab)
    pending: list[tuple[float, int, int]] = []  # (upper bound of the score, level, component)
    for m, level in enumerate(levels):
        h_img, w_img = level.labels.shape
        x, y, w, h, area = level.stats.T
        ok = (x > 0) & (y > 0) & (x + w < w_img) & (y + h < h_img)
        ok &= (area >= max(16, 0.002 * h_img * w_img)) & (area <= 0.5 * h_img * w_img)
        ok &= (area >= _MIN_FILL * w * h) & (np.maximum(w, h) <= _MAX_ASPECT * np.minimum(w, h))
        ok[0] = False  # the background of the mask
        prior = _prior(level.stats, (h_img, w_img))
        pending.extend((float(prior[k]), m, int(k)) for k in np.nonzero(ok)[0])
    pending.sort(reverse=True)
    # the same region at neighbouring thresholds and levels is scored once (boxes equal to 2 px)
    seen: set[tuple[int, ...]] = set()
    unique = []
    for entry in pending:
        key = tuple(v // 2 for v in levels[entry[1]].to_work(entry[2]))
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    pending = unique
    known: dict[tuple[int, int], _Candidate | float | None] = {}  # a result, or a tighter bound

    def best_of(outer: _Candidate | None) -> _Candidate | None:
        # Every factor of the score but the prior is at most 1, so the prior bounds it: best first, and
        # stop when the bound falls below the best score so far (branch and bound).
        best: _Candidate | None = None
        for prior, m, k in pending:
            floor = best.score if best is not None else _MIN_SCORE
            if prior < floor:
                break
            if outer is not None and not _nested(levels[m].to_work(k), outer.box):
                continue
            result = known.get((m, k), prior)
            if isinstance(result, float):
                if result < floor:
                    continue
                result = known[m, k] = _score(levels[m], k, prior, floor)
            if not isinstance(result, _Candidate) or result.score < floor:
                continue
            if outer is not None and not _distinct(result, outer):
                continue  # a piece of the outer region itself
            best = result
        return best

    # The target lies on a card: a candidate holding another one of another colour (the card interior
    # around the patch, a rectangle on a rectangle) gives way to the best one inside it.
    best = best_of(None)
    while best is not None and (inner := best_of(best)) is not None:
        best = inner
    return best


def _nested(box: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    """Whether ``box`` lies inside ``outer`` and covers at most ``_MAX_NESTED`` of it."""
    x0, y0, x1, y1 = box
    ox0, oy0, ox1, oy1 = outer
    inside = ox0 <= x0 and oy0 <= y0 and x1 <= ox1 and y1 <= oy1
    return inside and (x1 - x0) * (y1 - y0) <= _MAX_NESTED * (ox1 - ox0) * (oy1 - oy0)


def _distinct(a: _Candidate, b: _Candidate) -> bool:
    """Whether two candidates differ in colour clearly more than the plainer one varies."""
    separation = float(np.linalg.norm(a.colour - b.colour))
    return separation >= max(_MIN_CONTRAST, _MIN_SEPARATION * min(a.spread, b.spread))


def _step(profile: np.ndarray, n_deep: int, rise: float) -> int | None:
    """Index of the first profile entry outside the patch, or ``None`` when the profile never leaves it.

    ``profile`` runs from inside the patch outwards; its first ``n_deep`` entries are surely inside. The
    first entry more than ``rise`` above their median marks a step; the steepest rise next to it and the
    monotone rise around that give the levels just before and just after the edge, and the edge is where
    the profile crosses their midpoint (the centre of a blurred step, wherever the levels settle later).
    """
    a = float(np.median(profile[:n_deep]))
    above = np.nonzero(profile[1:] > a + rise)[0]
    if len(above) == 0:
        return None
    i = int(above[0]) + 1
    slope = np.diff(profile)
    lo, hi = max(i - 2, 0), min(i + 2, len(slope))
    j = lo + int(np.argmax(slope[lo:hi]))
    steep = max(float(slope[j]), 1e-6)
    s, e = j, j
    while s > 0 and slope[s - 1] > 0.3 * steep:
        s -= 1
    while e + 1 < len(slope) and slope[e + 1] > 0.3 * steep:
        e += 1
    mid = 0.5 * (profile[s] + profile[e + 1])
    return s + int(np.argmax(profile[s : e + 2] > mid))


def _refine(
    rgb: np.ndarray,
    box: tuple[int, int, int, int],
    contrast: float,
    reach_in: int,
    reach_out: int,
) -> tuple[tuple[int, int, int, int], bool]:
    """Move each side of ``box`` (which lies inside the patch) to the patch edge.

    Also says whether some side found no edge before the end of its search window (not the image edge),
    so the caller can search again from the larger box.
    """
    import cv2

    h_img, w_img = rgb.shape[:2]
    x0, y0, x1, y1 = box
    wx0, wy0 = max(x0 - reach_out, 0), max(y0 - reach_out, 0)
    wx1, wy1 = min(x1 + reach_out, w_img), min(y1 + reach_out, h_img)
    lab = cv2.medianBlur(_weighted_lab(rgb[wy0:wy1, wx0:wx1]), 3)  # a median keeps straight edges in place
    bx0, by0, bx1, by1 = x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0
    colour = np.median(lab[by0:by1, bx0:bx1].reshape(-1, 3), axis=0)  # spots are too few to move it
    dist = np.linalg.norm(lab - colour, axis=2)
    qy, qx = (by1 - by0) // 8, (bx1 - bx0) // 8
    col_profile = np.median(dist[by0 + qy : max(by1 - qy, by0 + qy + 1)], axis=0)
    row_profile = np.median(dist[:, bx0 + qx : max(bx1 - qx, bx0 + qx + 1)], axis=1)
    # a symmetric smoothing leaves the midpoint of a blurred step where it is and halves the noise
    col_profile, row_profile = (
        np.convolve(np.pad(q, 1, mode="edge"), (0.25, 0.5, 0.25), "valid") for q in (col_profile, row_profile)
    )
    hit = False
    sides = []
    more = ((wx0 > 0, wx1 < w_img), (wy0 > 0, wy1 < h_img))  # can the window grow on each side?
    for (profile, lo, hi), grow in zip(((col_profile, bx0, bx1), (row_profile, by0, by1)), more, strict=True):
        inside = profile[lo:hi]
        noise = 1.4826 * float(np.median(np.abs(inside - np.median(inside))))
        rise = min(
            max(_STEP_SIGMAS * noise, _MIN_STEP, _STEP_FRACTION * contrast), _MAX_STEP_FRACTION * contrast
        )
        n_in = min(reach_in, (hi - lo + 1) // 2)
        for coords, can_grow in (
            (np.arange(lo + n_in - 1, -1, -1), grow[0]),
            (np.arange(hi - n_in, len(profile)), grow[1]),
        ):
            k = _step(profile[coords], max(1, n_in - 3), rise) if len(coords) > n_in else None
            if k is None:
                k = len(coords)
                hit = hit or can_grow
            sides.append(int(coords[k - 1]))
    nx0, nx1, ny0, ny1 = sides[0] + wx0, sides[1] + wx0 + 1, sides[2] + wy0, sides[3] + wy0 + 1
    return (nx0, ny0, max(nx1, nx0 + 1), max(ny1, ny0 + 1)), hit


def locate_patch(image: np.ndarray, *, margin: float = 0.0) -> Box:
    """Find the uniform target patch (a colour chip lying on a card) in a photo.

    The method is described in the module docstring: low-gradient connected components scored for
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
            training set with a bad file is an error to fix; :func:`crop_folder`, a batch tool, instead
            warns and skips such files.
    """
    boxes: dict[Path, Box] = {}
    for p in track([Path(q) for q in paths], "locating patches", enabled=progress):
        raw = read_image(p)  # its DataError names the file
        try:
            boxes[p] = locate_patch(raw.array)
        except DataError as err:
            raise DataError(f"{p}: {err}") from err
    return boxes


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

    from PIL import Image

    if crop.dtype != np.uint8:
        import cv2

        ok, buf = cv2.imencode(dst.suffix, np.ascontiguousarray(crop[:, :, ::-1]))
        if not ok:
            raise DataError(f"{dst}: cannot write a {crop.dtype} crop as {dst.suffix}")
        atomic_write_bytes(dst, buf.tobytes())
        return
    try:
        with Image.open(src) as im:
            exif = im.info.get("exif")
    except OSError:  # OpenCV read it; Pillow cannot: write it without EXIF
        exif = None
    fmt = _PIL_FORMATS[dst.suffix.lower()]
    options: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if exif and fmt != "BMP":
        options["exif"] = exif
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop)).save(buf, format=fmt, **options)
    atomic_write_bytes(dst, buf.getvalue())


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
    - ``contact_sheet.png`` with ``sheet`` (see :func:`contact_sheet`; at most 48 images).

    A file that cannot be read or holds no patch is skipped with a warning naming it: one bad photo never
    stops a batch nor loses the crops already made (:func:`locate_patches`, by contrast, raises).

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
