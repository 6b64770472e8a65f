"""Step 4 of :func:`~tinct.patch.crop.locate_patch`: moving each side of the found region to the patch edge.

**Refinement at full resolution.** The winning component lies a gradient band inside the true patch.
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
"""

from __future__ import annotations

import numpy as np

from tinct.patch.crop.regions import _weighted_lab

_STEP_SIGMAS = 6.0  # a profile step must exceed this many robust standard deviations of the patch
_MIN_STEP = 2.0  # ... and this many weighted-Lab units
_STEP_FRACTION = 0.3  # ... and this fraction of the patch's contrast to its surround,
_MAX_STEP_FRACTION = 0.5  # ... but at most this fraction (noise cannot hide an edge the profile must cross)


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
