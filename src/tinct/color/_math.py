"""Gradient-safe elementary functions shared by the colour ops.

``sqrt``, ``x ** (1/3)``, ``log`` and ``atan2`` have infinite or undefined derivatives at 0 (and atan2 at
the origin). Colour science hits those points all the time: identical colours in a delta E, achromatic
colours (a = b = 0), black pixels. Each helper here keeps the value exact away from the singular point
and makes the derivative finite at it. ``torch.where`` is only used after the argument of the unsafe
branch has itself been made safe, because the branch not taken still back-propagates its NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["safe_atan2", "safe_log", "safe_sqrt", "tiny"]


def tiny(x: Tensor) -> float:
    """A floor below which a value is treated as 0 for derivative purposes: 1e-12 (float64) / 1e-8 (other)."""
    return 1e-12 if x.dtype == torch.float64 else 1e-8


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x > 0`` and exactly 0 for ``x <= 0``, with a zero (not infinite) gradient there.

    The value is exact everywhere; only the derivative at x <= 0 is replaced (by 0, the natural
    sub-gradient of a distance at coincident points).
    """
    positive = x > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x)
    )


def safe_atan2(y: Tensor, x: Tensor) -> Tensor:
    """``atan2(y, x)`` in radians with a finite (zero) gradient at the origin, where it returns 0."""
    origin = (x == 0) & (y == 0)
    return torch.atan2(y, torch.where(origin, torch.ones_like(x), x))


def safe_log(x: Tensor, eps: float) -> Tensor:
    """``log(max(x, eps))``: finite value and gradient for x <= 0."""
    return torch.log(torch.clamp(x, min=eps))
