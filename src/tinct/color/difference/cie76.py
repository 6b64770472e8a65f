"""CIE 1976 colour difference: the Euclidean distance in CIELAB.

References:
    CIE 015:2018, Colorimetry, 4th edition, section 8.3.
"""

from __future__ import annotations

from torch import Tensor

from tinct.color.difference._ops import _check_pair, _sqrt

__all__ = ["delta_e_cie76"]


def delta_e_cie76(lab1: Tensor, lab2: Tensor, dim: int = -3) -> Tensor:
    r"""CIE 1976 colour difference :math:`\Delta E^*_{ab}`, the Euclidean distance in CIELAB.

    Args:
        lab1: first CIE L*a*b* colour(s).
        lab2: second CIE L*a*b* colour(s), same shape as ``lab1``.
        dim: channel axis.

    Returns:
        :math:`\Delta E^*_{ab}`, the shape of ``lab1`` without the channel axis.

    Shape:
        - lab1, lab2: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: :math:`(*, H, W)` or :math:`(*)`.

    Note:
        Domain L* in [0, 100], a*, b* about [-128, 128] (any real values are accepted); range [0, inf).
        The gradient at identical colours is 0 (the sub-gradient of a distance), not NaN.

    Example:
        >>> import torch
        >>> lab1 = torch.tensor([[50.0, 2.6772, -79.7751]])
        >>> lab2 = torch.tensor([[50.0, 0.0, -82.7485]])
        >>> delta_e_cie76(lab1, lab2, dim=-1)
        tensor([4.0011])

    References:
        CIE 015:2018, Colorimetry, section 8.3.1.
    """
    pos = _check_pair(lab1, lab2, dim)
    diff = lab1 - lab2
    return _sqrt((diff * diff).sum(pos))
