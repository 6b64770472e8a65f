"""Photos of any size colorized in horizontal strips, in memory that follows the photo's 8-bit size.

Used by :func:`tinct.colorization.colorize.colorize_file`: the photo's L is computed strip by strip
(:func:`lightness`), the network runs once at its own resolution, and the output is made strip by strip
(:func:`render`), each strip's own L joined with the rows of ab upsampled for it; the comparison panel is
shrunk from the strips as they pass (:class:`Shrink`). The result equals colorizing the whole photo at once
(:class:`~tinct.colorization.networks.Colorizer`) up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "TILE_PIXELS",
    "Shrink",
    "join_panel",
    "lightness",
    "panel_size",
    "render",
    "strips",
]

#: Pixels per strip when a photo is processed strip by strip (some 30 MB of float temporaries).
TILE_PIXELS = 1 << 18

PANEL_HEIGHT = 384  # each image of a panel is shrunk to at most this height ...
PANEL_WIDTH = 2048  # ... and this width (panoramas)


def strips(h: int, w: int, rows: int | None) -> Iterator[tuple[int, int]]:
    step = max(1, rows or TILE_PIXELS // w)
    for r0 in range(0, h, step):
        yield r0, min(h, r0 + step)


def panel_size(h: int, w: int) -> tuple[int, int]:
    scale = min(1.0, PANEL_HEIGHT / h, PANEL_WIDTH / w)
    if scale == 1.0:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


class Shrink:
    """A ``(3, H, W)`` image received as horizontal strips and returned shrunk to ``size``, equal (to float
    rounding) to ``F.interpolate`` of the whole (bilinear, antialiased): each strip is shrunk along its rows
    as it arrives, into one buffer of ``3 x H x size[1]`` floats, the columns once at the end."""

    def __init__(self, full: tuple[int, int], size: tuple[int, int]) -> None:
        self.full, self.size = full, size
        self.buffer = torch.empty(3, full[0], size[1])
        self.row = 0

    def add(self, strip: torch.Tensor) -> None:
        import torch.nn.functional as F

        t = strip.shape[-2]
        if self.size[1] != self.full[1]:
            strip = F.interpolate(strip[None], size=(t, self.size[1]), mode="bilinear", antialias=True)[0]
        self.buffer[:, self.row : self.row + t] = strip
        self.row += t

    def result(self) -> torch.Tensor:
        import torch.nn.functional as F

        x = self.buffer
        if self.size[0] != self.full[0]:
            x = F.interpolate(x[None], size=self.size, mode="bilinear", antialias=True)[0]
        return x


def lightness(array: np.ndarray, white_level: float, rows: int | None, original: Shrink | None) -> np.ndarray:
    """The L* of an ``H x W x 3`` sRGB array as an ``H x W`` float32 array, computed strip by strip."""
    from tinct.color.lab import rgb_to_lab

    h, w = array.shape[:2]
    lightness = np.empty((h, w), np.float32)
    out = torch.from_numpy(lightness)
    for r0, r1 in strips(h, w, rows):
        strip = torch.from_numpy(np.array(array[r0:r1].transpose(2, 0, 1), order="C"))  # a copy
        rgb = strip.float().div_(float(white_level))
        if array.dtype.kind == "f":
            rgb.clamp_(0.0, 1.0)
        out[r0:r1] = rgb_to_lab(rgb)[0]
        if original is not None:
            original.add(rgb)
    return lightness


def render(
    lightness: np.ndarray, ab: torch.Tensor, rows: int | None, pred: Shrink | None, gray: Shrink | None
) -> np.ndarray:
    """The colorized photo as an ``H x W x 3`` uint8 sRGB array, strip by strip: each strip's own L joined with the rows of ``ab`` (network grid) upsampled to full resolution."""
    from tinct.color.lab import lab_to_rgb
    from tinct.colorization.networks import upsample_rows

    h, w = lightness.shape
    full = torch.from_numpy(lightness)
    out = np.empty((h, w, 3), np.uint8)
    for r0, r1 in strips(h, w, rows):
        lab = torch.cat([full[None, r0:r1], upsample_rows(ab, (h, w), r0, r1)[0]], dim=0)
        rgb = lab_to_rgb(lab, clip=True)
        if pred is not None:
            pred.add(rgb)
        if gray is not None:  # as tinct.colorization.metrics.grayscale_from_lab (whose import costs 250 MB)
            lab[1:] = 0.0
            gray.add(lab_to_rgb(lab, clip=True))
        # Rounded as tinct.io.image.write_image rounds: in float64.
        out[r0:r1] = (rgb.double() * 255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()
    return out


def join_panel(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    gap = torch.ones(3, parts[0].shape[-2], 4)
    joined = [parts[0]]
    for p in parts[1:]:
        joined += [gap, p]
    return torch.cat(joined, dim=-1).clamp(0, 1)
