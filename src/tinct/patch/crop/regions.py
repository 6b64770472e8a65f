"""Uniform regions of a photo and their scores: the candidates of :func:`~tinct.patch.crop.locate_patch`.

The search looks for where the colour is *flat*, not for a given colour, so it works under any colour cast
and exposure. Colour distances are Euclidean in CIELAB (sRGB input, D65) with L* weighted by one half
("units" below), because shading, vignetting and shadows move lightness far more than a* and b*. Steps 1
to 3 of the search live here, step 4 in :mod:`tinct.patch.crop.refine`:

1. **Working copy and pyramid.** The image is reduced by area averaging so its longer side is at most
   256 px (by :func:`~tinct.patch.crop.locate_patch`), and halved again while the shorter side keeps
   24 px (160 x 120 gives three levels): noisy photos need the averaging of the small levels, clean ones
   the detail of the large.
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
   there is no patch, and :func:`~tinct.patch.crop.locate_patch` raises
   :class:`~tinct.core.exceptions.DataError` (target patches score 0.5 and more in synthetic photos,
   smooth or white noise at most 0.31).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
