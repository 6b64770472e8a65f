"""Elementwise steps shared by the colour-difference formulas, each with an optional in-place output.

Every formula is differentiable with finite gradients everywhere: :func:`_sqrt` has a zero gradient at 0
where autograd records. Without autograd a formula may overwrite its own dead temporaries (the ``out=``
targets :func:`_reuse` / :func:`_fresh`); the operations, and so the values, are the same either way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinct.color._math import safe_sqrt
from tinct.core.checks import check_channel_dim, check_same_shape


def _sqrt(x: Tensor, inplace: bool = False) -> Tensor:
    """``sqrt`` of a non-negative tensor with a zero gradient at 0 (:func:`safe_sqrt` when autograd records).

    Without autograd the guard is dead weight: ``torch.sqrt`` gives the same values for ``x >= 0``.
    """
    if x.requires_grad:
        return safe_sqrt(x)
    return torch.sqrt(x, out=x if inplace else None)


# The CIEDE2000 steps name their ``out=`` target as ``out(t)``: ``_reuse`` (t is a temporary that is dead
# after the step, and no gradient is recorded, so the step may overwrite it) or ``_fresh`` (allocate).


def _fresh(t: Tensor) -> None:
    return None


def _reuse(t: Tensor) -> Tensor:
    return t


def _affine(x: Tensor, scale: float, offset: float, out: Tensor | None) -> Tensor:
    """``offset + scale * x`` in one pass."""
    return torch.add(torch.full((), offset, dtype=x.dtype, device=x.device), x, alpha=scale, out=out)


def _horner(x: Tensor, coefficients: tuple[float, ...], inplace: bool) -> Tensor:
    """The polynomial with ``coefficients`` (highest degree first) at ``x``, one pass per degree."""
    out = _reuse if inplace else _fresh
    y = _affine(x, coefficients[0], coefficients[1], None)
    for coefficient in coefficients[2:]:
        c = torch.full((), coefficient, dtype=x.dtype, device=x.device)
        y = torch.addcmul(c, y, x, out=out(y))
    return y


def _needs_grad(*xs: Tensor) -> bool:
    return torch.is_grad_enabled() and any(x.requires_grad for x in xs)


def _check_pair(lab1: Tensor, lab2: Tensor, dim: int) -> int:
    pos = check_channel_dim(lab1, dim, name="lab1")
    check_channel_dim(lab2, dim, name="lab2")
    check_same_shape(lab1, lab2, ("lab1", "lab2"))
    return pos
