"""CIE 1994 colour difference, with the parametric factors of its graphic-arts and textiles applications.

References:
    CIE 116-1995, Industrial colour-difference evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import Tensor

from tinct.color.difference._ops import _check_pair, _sqrt
from tinct.color.difference.ciede2000 import _map_pairs
from tinct.core.checks import check_choice, check_positive

__all__ = ["CIE94_APPLICATIONS", "delta_e_cie94"]

#: Parametric factors of CIE 1994 per application: ``(kL, K1, K2)`` (CIE 116-1995; colour-science
#: ``delta_E_CIE1994(textiles=...)``). kC = kH = 1 for both.
CIE94_APPLICATIONS: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {"graphic_arts": (1.0, 0.045, 0.015), "textiles": (2.0, 0.048, 0.014)}
)


def _cie94(
    L1: Tensor,
    a1: Tensor,
    b1: Tensor,
    L2: Tensor,
    a2: Tensor,
    b2: Tensor,
    kL: float,
    kC: float,
    kH: float,
    K1: float,
    K2: float,
    inplace: bool = False,
) -> Tensor:
    c1 = _sqrt(a1 * a1 + b1 * b1, inplace)
    c2 = _sqrt(a2 * a2 + b2 * b2, inplace)
    dl = (L1 - L2) / kL
    dc = c1 - c2
    da = a1 - a2
    db = b1 - b2
    # dH^2 = da^2 + db^2 - dC^2 >= 0 up to rounding; colour-science takes dH = 0 where it is not > 0.
    dh2 = torch.clamp(da * da + db * db - dc * dc, min=0)
    sc = kC * (1 + K1 * c1)
    sh = kH * (1 + K2 * c1)
    ct = dc / sc
    return _sqrt(dl * dl + ct * ct + dh2 / (sh * sh), inplace)


def delta_e_cie94(
    lab1: Tensor,
    lab2: Tensor,
    dim: int = -3,
    application: str = "graphic_arts",
    kL: float | None = None,
    kC: float = 1.0,
    kH: float = 1.0,
    K1: float | None = None,
    K2: float | None = None,
) -> Tensor:
    r"""CIE 1994 colour difference :math:`\Delta E^*_{94}`; ``lab1`` is the reference colour.

    .. math::
        \Delta E^*_{94} = \sqrt{\left(\frac{\Delta L^*}{k_L}\right)^2
        + \left(\frac{\Delta C^*_{ab}}{k_C S_C}\right)^2 + \left(\frac{\Delta H^*_{ab}}{k_H S_H}\right)^2},
        \quad S_C = 1 + K_1 C^*_1, \quad S_H = 1 + K_2 C^*_1.

    Args:
        lab1: reference CIE L*a*b* colour(s); its chroma :math:`C^*_1` sets the weights.
        lab2: sample CIE L*a*b* colour(s), same shape as ``lab1``.
        dim: channel axis.
        application: ``"graphic_arts"`` (kL = 1, K1 = 0.045, K2 = 0.015) or ``"textiles"`` (kL = 2,
            K1 = 0.048, K2 = 0.014); see :data:`CIE94_APPLICATIONS`.
        kL: lightness factor; ``None`` takes the application's.
        kC: chroma factor.
        kH: hue factor.
        K1: chroma weighting constant; ``None`` takes the application's.
        K2: hue weighting constant; ``None`` takes the application's.

    Returns:
        :math:`\Delta E^*_{94}`, the shape of ``lab1`` without the channel axis.

    Raises:
        UnknownNameError: ``application`` is not a key of :data:`CIE94_APPLICATIONS`.
        ValueError: a factor is not positive.

    Shape:
        - lab1, lab2: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: :math:`(*, H, W)` or :math:`(*)`.

    Note:
        Domain L* in [0, 100], a*, b* about [-128, 128]; range [0, inf). The formula is not symmetric:
        ``delta_e_cie94(a, b) != delta_e_cie94(b, a)`` in general, as in the standard and colour-science.
        :math:`\Delta H^{*2}_{ab} = \Delta a^{*2} + \Delta b^{*2} - \Delta C^{*2}_{ab}` is taken as 0 where
        rounding makes it negative, as colour-science does. Agrees with colour-science 0.4.7
        ``delta_E(a, b, method="CIE 1994", textiles=...)``.

    Example:
        >>> lab1 = torch.tensor([[50.0, 2.6772, -79.7751]])
        >>> lab2 = torch.tensor([[50.0, 0.0, -82.7485]])
        >>> delta_e_cie94(lab1, lab2, dim=-1)
        tensor([1.3950])

    References:
        CIE 116-1995, Industrial colour-difference evaluation.
    """
    pos = _check_pair(lab1, lab2, dim)
    check_choice(application, CIE94_APPLICATIONS, "CIE 1994 application")
    default_kL, default_K1, default_K2 = CIE94_APPLICATIONS[application]
    kL = default_kL if kL is None else kL
    K1 = default_K1 if K1 is None else K1
    K2 = default_K2 if K2 is None else K2
    for value, name in ((kL, "kL"), (kC, "kC"), (kH, "kH")):
        check_positive(value, name)
    for value, name in ((K1, "K1"), (K2, "K2")):
        check_positive(value, name, allow_zero=True)
    return _map_pairs(_cie94, lab1, lab2, pos, kL=kL, kC=kC, kH=kH, K1=K1, K2=K2)
