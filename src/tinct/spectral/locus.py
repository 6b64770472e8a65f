"""Illuminant chromaticities along the Planckian and CIE daylight loci, and random illuminant sampling.

Closed-form approximations so that the embedded synthetic data needs no spectral tables at run time:

- Planckian locus: Kim et al. (2002) cubic splines, 1667-25000 K.
- CIE daylight locus: CIE 015:2018, eq. 4.7-4.9, 4000-25000 K.

Both are checked against colour-science in the tests.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["daylight_xy", "planckian_xy", "sample_illuminants", "xy_to_linear_rgb"]


def planckian_xy(cct: Tensor) -> Tensor:
    """CIE 1931 xy of a black body at ``cct`` kelvin (Kim et al. 2002 approximation, 1667-25000 K).

    Shape:
        ``(*)`` -> ``(*, 2)``.

    References:
        Kim, Kim, Lee, Kim, Kim, Kang, "Design of advanced color temperature control system for HDTV
        applications", J. Korean Physical Society 41(6), 2002.
    """
    t = cct.to(torch.float64)
    if bool(((t < 1667) | (t > 25000)).any()):
        raise ValueError("planckian_xy: cct must lie in [1667, 25000] K")
    x_low = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    x_high = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    x = torch.where(t <= 4000, x_low, x_high)
    y1 = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    y2 = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    y3 = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    y = torch.where(t <= 2222, y1, torch.where(t <= 4000, y2, y3))
    return torch.stack([x, y], dim=-1).to(cct.dtype if cct.is_floating_point() else torch.float64)


def daylight_xy(cct: Tensor) -> Tensor:
    """CIE 1931 xy of CIE daylight at correlated colour temperature ``cct`` (4000-25000 K).

    Shape:
        ``(*)`` -> ``(*, 2)``.

    References:
        CIE 015:2018 Colorimetry, 4th ed., section 4.1.2.
    """
    t = cct.to(torch.float64)
    if bool(((t < 4000) | (t > 25000)).any()):
        raise ValueError("daylight_xy: cct must lie in [4000, 25000] K")
    x_low = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    x_high = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    x = torch.where(t <= 7000, x_low, x_high)
    y = -3.0 * x**2 + 2.870 * x - 0.275
    return torch.stack([x, y], dim=-1).to(cct.dtype if cct.is_floating_point() else torch.float64)


def xy_to_linear_rgb(xy: Tensor) -> Tensor:
    """Linear sRGB (D65, unit L2 norm) of a chromaticity ``xy`` with Y = 1. Shape ``(*, 2)`` -> ``(*, 3)``."""
    from tinct.color.rgb import xyz_to_linear_rgb

    x, y = xy.unbind(-1)
    xyz = torch.stack([x / y, torch.ones_like(x), (1 - x - y) / y], dim=-1)
    rgb = xyz_to_linear_rgb(xyz, dim=-1)
    return rgb / rgb.norm(dim=-1, keepdim=True)


def sample_illuminants(
    n: int,
    generator: torch.Generator | None = None,
    cct_range: tuple[float, float] = (2500.0, 10000.0),
    tint: float = 0.03,
) -> Tensor:
    """Draw ``n`` plausible scene illuminants as linear sRGB, unit L2 norm, shape ``(n, 3)``.

    The correlated colour temperature is drawn uniformly in mired (1e6 / T), which spaces illuminants
    roughly uniformly in perceived colour; below 4000 K the Planckian locus is used and above it the
    daylight locus. Each illuminant then gets a random per-channel gain in ``[1 - tint, 1 + tint]`` to move
    it slightly off the locus (real scenes are rarely exactly on it).
    """
    lo, hi = cct_range
    if not 1667 <= lo <= hi <= 25000:
        raise ValueError(f"cct_range must satisfy 1667 <= low <= high <= 25000, got {cct_range}")
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    mired = 1e6 / hi + u * (1e6 / lo - 1e6 / hi)
    cct = 1e6 / mired
    xy = torch.where(
        (cct < 4000).unsqueeze(-1), planckian_xy(cct.clamp(1667, 25000)), daylight_xy(cct.clamp(4000, 25000))
    )
    rgb = xy_to_linear_rgb(xy).clamp_min(1e-4)
    gains = 1 + tint * (2 * torch.rand(n, 3, generator=generator, dtype=torch.float64) - 1)
    rgb = rgb * gains
    return (rgb / rgb.norm(dim=-1, keepdim=True)).float()
