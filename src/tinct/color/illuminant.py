"""Illuminants as RGB gains: normalisation, von Kries application and correction, and their errors.

An illuminant estimate is an RGB triplet ``(*, 3)`` whose scale is meaningless; it is compared to the
truth by angles (recovery and reproduction angular errors), which are invariant to positive scaling of
either argument. Illuminants are expected to be positive (a colour-constancy model should end in a
softplus or an exp). Gains are floored at a tiny value so that applying or correcting with a degenerate
illuminant stays finite, but an angle involving a zero illuminant is NaN: a zero vector has no direction,
and scoring it 0 would make a degenerate estimator look perfect.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinct.color._math import safe_atan2, safe_sqrt, tiny
from tinct.color._module import FunctionModule
from tinct.core.checks import check_channel_dim, check_choice, check_same_shape
from tinct.core.exceptions import ShapeError

__all__ = [
    "ILLUMINANT_NORMS",
    "AngularError",
    "ApplyIlluminant",
    "CorrectIlluminant",
    "ReproductionError",
    "angular_error",
    "apply_illuminant",
    "correct_illuminant",
    "normalize_illuminant",
    "reproduction_error",
]

#: Valid ``norm`` names: "green" makes G = 1 (the usual camera white-balance gains convention), "l1" makes
#: the entries sum to 1, "l2" gives unit Euclidean norm, "max" makes the largest entry 1.
ILLUMINANT_NORMS: tuple[str, ...] = ("green", "l1", "l2", "max")

_REDUCTIONS = ("mean", "sum", "none")


def normalize_illuminant(L: Tensor, norm: str = "green", dim: int = -1) -> Tensor:
    """Rescale illuminant RGB so that its ``norm`` is 1.

    Args:
        L: illuminant RGB.
        norm: one of :data:`ILLUMINANT_NORMS`.
        dim: channel axis.

    Returns:
        ``L`` divided by its norm along ``dim``, same shape and dtype.

    Raises:
        UnknownNameError: unknown ``norm``; the message lists the valid ones.

    Shape:
        - L: :math:`(*, 3)` (``dim=-1``).
        - output: same as ``L``.

    Note:
        Domain positive RGB (any scale), range positive RGB with the chosen norm equal to 1. The
        denominator is floored at 1e-12 (float64) / 1e-8 (other dtypes).

    Example:
        >>> normalize_illuminant(torch.tensor([0.5, 0.25, 0.25]), "green")
        tensor([2., 1., 1.])
    """
    pos = check_channel_dim(L, dim, name="illuminant")
    check_choice(norm, ILLUMINANT_NORMS, "illuminant norm")
    if norm == "green":
        denom = L.narrow(pos, 1, 1)
    elif norm == "l1":
        denom = L.abs().sum(dim=pos, keepdim=True)
    elif norm == "l2":
        denom = torch.linalg.vector_norm(L, dim=pos, keepdim=True)
    else:
        denom = L.amax(dim=pos, keepdim=True)
    return L / denom.clamp(min=tiny(L))


def _gains(image: Tensor, L: Tensor, norm: str, dim: int) -> Tensor:
    """Normalised illuminant shaped to broadcast against ``image`` along its channel axis."""
    pos = check_channel_dim(image, dim, name="image")
    gains = normalize_illuminant(L, norm, dim=-1)
    gains = gains.reshape(gains.shape + (1,) * (image.ndim - pos - 1))
    try:
        torch.broadcast_shapes(image.shape, gains.shape)
    except RuntimeError as err:
        raise ShapeError(
            f"illuminant of shape {tuple(L.shape)} does not broadcast against image of shape "
            f"{tuple(image.shape)} with dim={dim}: expected (3,) or (*, 3) with * the image's batch dims"
        ) from err
    return gains


def apply_illuminant(image: Tensor, L: Tensor, *, norm: str = "green", dim: int = -3) -> Tensor:
    """Render ``image`` under illuminant ``L`` with a diagonal (von Kries) model: ``image * L / norm(L)``.

    Args:
        image: linear RGB seen under a white (1, 1, 1) light.
        L: illuminant RGB, one per image or one for all.
        norm: how ``L`` is normalised first, one of :data:`ILLUMINANT_NORMS` (the default "green" leaves the
            green channel unchanged).
        dim: channel axis of ``image``.

    Returns:
        The image under ``L``, same shape and dtype as ``image`` (after broadcasting).

    Shape:
        - image: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - L: :math:`(*, 3)` or :math:`(3,)`.
        - output: same as ``image``.

    Note:
        Domain linear RGB in [0, 1]; the range may exceed 1 for gains > 1 (no clipping).

    Example:
        >>> apply_illuminant(torch.ones(3, 1, 1), torch.tensor([2.0, 1.0, 0.5])).flatten()
        tensor([2.0000, 1.0000, 0.5000])

    References:
        J. von Kries, "Die Gesichtsempfindungen", 1905; G. D. Finlayson, M. S. Drew and B. V. Funt,
        "Diagonal transforms suffice for color constancy", ICCV 1993.
    """
    return image * _gains(image, L, norm, dim)


def correct_illuminant(image: Tensor, L: Tensor, *, norm: str = "green", dim: int = -3) -> Tensor:
    """White-balance ``image`` for illuminant ``L``: ``image / (L / norm(L))``, undoing the illuminant.

    Args:
        image: linear RGB seen under ``L``.
        L: illuminant RGB (estimated or true), one per image or one for all.
        norm: how ``L`` is normalised first, one of :data:`ILLUMINANT_NORMS`.
        dim: channel axis of ``image``.

    Returns:
        The image under a white light, same shape and dtype as ``image`` (after broadcasting);
        ``correct_illuminant(apply_illuminant(x, L), L) == x`` to rounding.

    Shape:
        - image: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - L: :math:`(*, 3)` or :math:`(3,)`.
        - output: same as ``image``.

    Note:
        Domain linear RGB; range linear RGB (no clipping). Gains are floored at 1e-12 / 1e-8 before dividing.

    Example:
        >>> correct_illuminant(torch.ones(3, 1, 1), torch.tensor([2.0, 1.0, 0.5])).flatten()
        tensor([0.5000, 1.0000, 2.0000])
    """
    gains = _gains(image, L, norm, dim)
    return image / gains.clamp(min=tiny(gains))


def _unit_scale(v: Tensor, pos: int) -> tuple[Tensor, Tensor]:
    """``(v / max|v|, zero)``: ``zero`` (``dim`` removed) flags all-zero vectors, which are left as they are."""
    # Both angles are scale invariant, so rescaling each vector by its (detached) largest magnitude changes
    # neither the value nor the gradient, and keeps float32 products away from underflow and overflow. No
    # floor on the scale: any non-zero vector, however small, keeps its direction.
    scale = v.detach().abs().amax(dim=pos, keepdim=True)
    zero = scale == 0
    return v / torch.where(zero, torch.ones_like(scale), scale), zero.squeeze(pos)


def _undefined_where(angle: Tensor, undefined: Tensor) -> Tensor:
    # Selecting NaN after the angle was computed on safe inputs keeps the gradient finite (zero) at the
    # undefined points and exact everywhere else.
    return torch.where(undefined, torch.full_like(angle, float("nan")), angle)


def _angle(u: Tensor, v: Tensor, pos: int) -> Tensor:
    cross = torch.linalg.cross(u, v, dim=pos)
    sin = safe_sqrt((cross * cross).sum(dim=pos))
    cos = (u * v).sum(dim=pos)
    return torch.rad2deg(safe_atan2(sin, cos))


def angular_error(pred: Tensor, target: Tensor, dim: int = -1) -> Tensor:
    r"""Recovery angular error between two RGB triplets, in degrees.

    .. math::
        \theta = \operatorname{atan2}(\lVert u \times v \rVert, u \cdot v)

    the same angle as :math:`\arccos(u \cdot v / \lVert u \rVert \lVert v \rVert)`, but accurate for small
    angles (arccos loses half the digits near 0) and with a finite gradient when ``pred`` is proportional
    to ``target`` (the gradient of arccos is infinite there).

    Args:
        pred: estimated illuminants.
        target: true illuminants.
        dim: channel axis.

    Returns:
        Angles in degrees, with ``dim`` removed.

    Shape:
        - pred, target: :math:`(*, 3)` (``dim=-1``), or images :math:`(*, 3, H, W)` with ``dim=-3``.
        - output: :math:`(*)` or :math:`(*, H, W)`.

    Note:
        Domain RGB (any scale, positive in practice); range [0, 180]. Invariant to positive scaling of
        either argument. A zero vector (``pred`` or ``target``) has no direction and gives NaN, never 0, so
        a degenerate estimate cannot look perfect (:func:`tinct.engine.statistics.error_statistics`
        refuses NaN); NaN inputs give NaN. The gradient is finite everywhere: exact where both vectors are
        non-zero, zero where the angle is NaN.

    Example:
        >>> angular_error(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0]))
        tensor(45.)

    References:
        S. D. Hordley and G. D. Finlayson, "Re-evaluating colour constancy algorithms", ICPR 2004.
    """
    pos = check_channel_dim(pred, dim, name="pred")
    check_channel_dim(target, dim, name="target")
    check_same_shape(pred, target, ("pred", "target"))
    (u, u_zero), (v, v_zero) = _unit_scale(pred, pos), _unit_scale(target, pos)
    return _undefined_where(_angle(u, v, pos), u_zero | v_zero)


def reproduction_error(pred: Tensor, target: Tensor, dim: int = -1) -> Tensor:
    r"""Reproduction angular error (Finlayson & Zakizadeh 2014), in degrees.

    The angle between the white surface corrected with the estimate, :math:`w = \mathrm{target} /
    \mathrm{pred}`, and the achromatic direction :math:`(1, 1, 1)`.

    Args:
        pred: estimated illuminants (positive).
        target: true illuminants.
        dim: channel axis.

    Returns:
        Angles in degrees, with ``dim`` removed.

    Shape:
        - pred, target: :math:`(*, 3)` (``dim=-1``), or images :math:`(*, 3, H, W)` with ``dim=-3``.
        - output: :math:`(*)` or :math:`(*, H, W)`.

    Note:
        Domain positive RGB (any scale); range [0, 180). Invariant to positive scaling of either argument.
        ``pred`` entries are floored at 1e-12 / 1e-8 of their largest entry before dividing. A zero
        ``pred`` or ``target`` gives NaN, as in :func:`angular_error`.

    Example:
        >>> reproduction_error(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 1.0]))
        tensor(0.)

    References:
        G. D. Finlayson and R. Zakizadeh, "Reproduction angular error: an improved performance metric for
        illuminant estimation", BMVC 2014.
    """
    pos = check_channel_dim(pred, dim, name="pred")
    check_channel_dim(target, dim, name="target")
    check_same_shape(pred, target, ("pred", "target"))
    (pred, pred_zero), (target, target_zero) = _unit_scale(pred, pos), _unit_scale(target, pos)
    white = target / pred.clamp(min=tiny(pred))
    angle = _angle(_unit_scale(white, pos)[0], torch.ones_like(white), pos)
    return _undefined_where(angle, pred_zero | target_zero)


def _reduce(x: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


class ApplyIlluminant(FunctionModule):
    """Module twin of :func:`apply_illuminant`; ``forward(image, L)``."""

    function = staticmethod(apply_illuminant)

    def __init__(self, norm: str = "green", dim: int = -3) -> None:
        super().__init__(norm=check_choice(norm, ILLUMINANT_NORMS, "illuminant norm"), dim=dim)


class CorrectIlluminant(FunctionModule):
    """Module twin of :func:`correct_illuminant`; ``forward(image, L)``."""

    function = staticmethod(correct_illuminant)

    def __init__(self, norm: str = "green", dim: int = -3) -> None:
        super().__init__(norm=check_choice(norm, ILLUMINANT_NORMS, "illuminant norm"), dim=dim)


class AngularError(nn.Module):
    """:func:`angular_error` as a loss, reduced with ``reduction`` ("mean", "sum" or "none").

    Example:
        >>> loss = AngularError()
        >>> loss(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]]))
        tensor(45.)
    """

    def __init__(self, reduction: str = "mean", dim: int = -1) -> None:
        super().__init__()
        self.reduction = check_choice(reduction, _REDUCTIONS, "reduction")
        self.dim = dim

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _reduce(angular_error(pred, target, dim=self.dim), self.reduction)


class ReproductionError(nn.Module):
    """:func:`reproduction_error` as a loss, reduced with ``reduction`` ("mean", "sum" or "none")."""

    def __init__(self, reduction: str = "mean", dim: int = -1) -> None:
        super().__init__()
        self.reduction = check_choice(reduction, _REDUCTIONS, "reduction")
        self.dim = dim

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return _reduce(reproduction_error(pred, target, dim=self.dim), self.reduction)
