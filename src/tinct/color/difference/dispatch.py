"""The colour-difference methods by name: :data:`DELTA_E_METHODS`, :func:`delta_e` and its modules.

Method families follow colour-science: a mapping :data:`DELTA_E_METHODS` and a dispatcher :func:`delta_e`
that validates the name. Every method is differentiable with finite gradients everywhere, including the
points where the published formulas have square roots or angles at 0: identical colours, achromatic colours
(a* = b* = 0) and, for CIEDE2000, hues exactly 180 degrees apart; :class:`DeltaELoss` uses them as a loss.

References:
    colour-science 0.4.7, ``colour.difference.delta_E``.
    CIE 015:2018, Colorimetry, 4th edition, section 8.3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from tinct.color.difference.cie76 import delta_e_cie76
from tinct.color.difference.cie94 import delta_e_cie94
from tinct.color.difference.ciede2000 import delta_e_ciede2000
from tinct.core.checks import check_choice

__all__ = ["DELTA_E_METHODS", "DeltaE", "DeltaELoss", "delta_e"]

#: CIELAB colour-difference methods by name; colour-science's names are accepted as aliases.
DELTA_E_METHODS: Mapping[str, Callable[..., Tensor]] = MappingProxyType(
    {
        "cie76": delta_e_cie76,
        "cie94": delta_e_cie94,
        "ciede2000": delta_e_ciede2000,
        "CIE 1976": delta_e_cie76,
        "CIE 1994": delta_e_cie94,
        "CIE 2000": delta_e_ciede2000,
    }
)


def delta_e(lab1: Tensor, lab2: Tensor, method: str = "ciede2000", dim: int = -3, **kwargs: Any) -> Tensor:
    r"""Colour difference between CIE L*a*b* colours by the method named ``method``.

    Args:
        lab1: first (reference, for ``"cie94"``) CIE L*a*b* colour(s).
        lab2: second CIE L*a*b* colour(s), same shape as ``lab1``.
        method: a key of :data:`DELTA_E_METHODS`: ``"cie76"``, ``"cie94"``, ``"ciede2000"`` or
            colour-science's ``"CIE 1976"``, ``"CIE 1994"``, ``"CIE 2000"``.
        dim: channel axis.
        **kwargs: keyword arguments of the method (``kL``, ``kC``, ``kH``; ``application``, ``K1``, ``K2``
            for ``"cie94"``).

    Returns:
        The colour difference, the shape of ``lab1`` without the channel axis.

    Raises:
        UnknownNameError: ``method`` is not a key of :data:`DELTA_E_METHODS`; the message lists them.

    Shape:
        - lab1, lab2: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: :math:`(*, H, W)` or :math:`(*)`.

    Note:
        Domain L* in [0, 100], a*, b* about [-128, 128]; range [0, inf).

    Example:
        >>> import torch
        >>> lab1 = torch.tensor([[50.0, 2.6772, -79.7751]])
        >>> lab2 = torch.tensor([[50.0, 0.0, -82.7485]])
        >>> delta_e(lab1, lab2, "CIE 1976", dim=-1)
        tensor([4.0011])

    References:
        colour-science 0.4.7, ``colour.difference.delta_E`` (the dispatcher this mirrors).
    """
    check_choice(method, DELTA_E_METHODS, "delta E method")
    return DELTA_E_METHODS[method](lab1, lab2, dim=dim, **kwargs)


class DeltaE(nn.Module):
    """Module twin of :func:`delta_e`.

    Args:
        method: a key of :data:`DELTA_E_METHODS`.
        dim: channel axis.
        **kwargs: keyword arguments of the method.

    Shape:
        - lab1, lab2: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: :math:`(*, H, W)` or :math:`(*)`.

    Example:
        >>> import torch
        >>> DeltaE("cie76", dim=-1)(torch.zeros(2, 3), torch.ones(2, 3))
        tensor([1.7321, 1.7321])
    """

    def __init__(self, method: str = "ciede2000", dim: int = -3, **kwargs: Any) -> None:
        super().__init__()
        self.method = check_choice(method, DELTA_E_METHODS, "delta E method")
        self.dim = dim
        self.kwargs = kwargs

    def forward(self, lab1: Tensor, lab2: Tensor) -> Tensor:
        return delta_e(lab1, lab2, self.method, self.dim, **self.kwargs)

    def extra_repr(self) -> str:
        extra = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
        return f"method={self.method!r}, dim={self.dim}{extra}"


_REDUCTIONS = ("mean", "sum", "none")


class DeltaELoss(nn.Module):
    """Colour-difference loss: :func:`delta_e` between prediction and target, reduced.

    The target is passed as the reference colour (``lab1``), which only matters for the asymmetric
    ``"cie94"``, whose weights then come from the target's chroma as the standard intends.

    Args:
        method: a key of :data:`DELTA_E_METHODS`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-pixel differences).
        dim: channel axis.
        **kwargs: keyword arguments of the method.

    Raises:
        UnknownNameError: unknown ``method`` or ``reduction``; the message lists the valid ones.

    Shape:
        - input, target: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``), CIE L*a*b*.
        - output: scalar, or :math:`(*, H, W)` / :math:`(*)` with ``reduction="none"``.

    Example:
        >>> import torch
        >>> loss = DeltaELoss("cie76", dim=-1)
        >>> loss(torch.zeros(2, 3), torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]))
        tensor(3.)
    """

    def __init__(
        self, method: str = "ciede2000", reduction: str = "mean", dim: int = -3, **kwargs: Any
    ) -> None:
        super().__init__()
        self.method = check_choice(method, DELTA_E_METHODS, "delta E method")
        self.reduction = check_choice(reduction, _REDUCTIONS, "reduction")
        self.dim = dim
        self.kwargs = kwargs

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        difference = delta_e(target, input, self.method, self.dim, **self.kwargs)
        if self.reduction == "mean":
            return difference.mean()
        if self.reduction == "sum":
            return difference.sum()
        return difference

    def extra_repr(self) -> str:
        extra = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
        return f"method={self.method!r}, reduction={self.reduction!r}, dim={self.dim}{extra}"
