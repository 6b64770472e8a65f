"""sRGB transfer functions and the linear sRGB <-> CIE XYZ matrices.

The sRGB encoding (IEC 61966-2-1:1999) is a piecewise curve: a linear segment of slope 12.92 near black
and a 2.4 power law offset by 0.055 elsewhere. Negative inputs take the linear segment, as in
colour-science's ``eotf_sRGB`` / ``eotf_inverse_sRGB``, so the functions are finite and
differentiable on the whole real line rather than returning NaN for out-of-gamut values.

The RGB -> XYZ matrix is the one colour-science 0.4.7 uses for sRGB
(``RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ``), i.e. the 4-decimal matrix published in
IEC 61966-2-1 (colour-science sets ``use_derived_matrix_RGB_to_XYZ=False`` for sRGB), so
:func:`linear_rgb_to_xyz` agrees with ``colour.sRGB_to_XYZ`` to float64 precision. The matrix derived
in float64 from the primaries (0.64, 0.33), (0.30, 0.60), (0.15, 0.06) and the D65 white
(0.3127, 0.3290) (``colour.normalised_primary_matrix``) differs from it by up to 3.9e-5 per entry, which
moves XYZ by ~1e-4 and CIELAB by up to ~0.02. The inverse is the exact float64 inverse of the forward
matrix, not IEC's 4-decimal inverse, so round trips are exact to rounding; it therefore differs from
``colour.XYZ_to_sRGB`` (which uses the 4-decimal inverse) by ~1e-4.

References:
    IEC 61966-2-1:1999, Multimedia systems and equipment - Colour measurement and management -
    Part 2-1: Default RGB colour space - sRGB.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tinct.color._module import FunctionModule
from tinct.core.checks import check_channel_dim

__all__ = [
    "SRGB_TO_XYZ_MATRIX",
    "XYZ_TO_SRGB_MATRIX",
    "LinearRgbToXyz",
    "LinearToSrgb",
    "SrgbToLinear",
    "XyzToLinearRgb",
    "linear_rgb_to_xyz",
    "linear_to_srgb",
    "srgb_to_linear",
    "xyz_to_linear_rgb",
]

Matrix = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

#: Linear sRGB -> CIE XYZ (D65, Y of white = 1), IEC 61966-2-1 / colour-science 0.4.7.
SRGB_TO_XYZ_MATRIX: Matrix = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)

#: CIE XYZ -> linear sRGB: the exact float64 inverse of :data:`SRGB_TO_XYZ_MATRIX`.
XYZ_TO_SRGB_MATRIX: Matrix = tuple(
    tuple(row) for row in torch.linalg.inv(torch.tensor(SRGB_TO_XYZ_MATRIX, dtype=torch.float64)).tolist()
)  # type: ignore[assignment]

# Break points of the IEC 61966-2-1 curve, on the encoded and on the linear side.
_ENCODED_BREAK = 0.04045
_LINEAR_BREAK = 0.0031308
_GAMMA = 2.4


def _matmul_channels(x: Tensor, matrix: Tensor, pos: int) -> Tensor:
    """Apply a 3x3 ``matrix`` to the channel axis ``pos`` of ``x`` (one BLAS call, no layout change).

    An image ``(*, 3, H, W)`` is viewed as ``(B, 3, H*W)`` and multiplied from the left, which keeps the
    output contiguous in the input layout; colour lists (nothing after the channel axis) are multiplied
    from the right as ``(N, 3) @ M.T`` because a batch of 3x1 products would be slow.
    """
    trail = math.prod(x.shape[pos + 1 :])
    if trail == 1:
        return (x.reshape(-1, 3) @ matrix.T).reshape(x.shape)
    lead = math.prod(x.shape[:pos])
    if lead == 1:  # a single image: plain mm, about twice as fast as a batch-of-one bmm on CPU
        return torch.mm(matrix, x.reshape(3, trail)).reshape(x.shape)
    return torch.matmul(matrix, x.reshape(lead, 3, trail)).reshape(x.shape)


def _needs_grad(x: Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def _as_matrix(matrix: Matrix, x: Tensor) -> Tensor:
    return torch.as_tensor(matrix, dtype=x.dtype, device=x.device)


def _decode(x: Tensor, inplace: bool = False, out: Tensor | None = None) -> Tensor:
    """sRGB EOTF on an already checked tensor.

    The power branch is written ``exp(2.4 * log(u))``: the same value as ``u ** 2.4`` to a few ulp and about
    three times faster on CPU. Its argument is clamped to the break point first, so the branch that
    ``torch.where`` discards never sees ``log`` of a negative number (that would back-propagate NaN).
    ``inplace`` runs the same operations, in the same order, in place on a temporary (``out`` if given,
    otherwise a new tensor), for use when no gradient is needed; both settings return bit-identical values.
    """
    if inplace:
        power = (
            torch.clamp(x, min=_ENCODED_BREAK, out=out) if out is not None else x.clamp(min=_ENCODED_BREAK)
        )
        power.add_(0.055).div_(1.055).log_().mul_(_GAMMA).exp_()
        return torch.where(x > _ENCODED_BREAK, power, x / 12.92, out=power)
    power = x.clamp(min=_ENCODED_BREAK)
    power = torch.exp(torch.log((power + 0.055) / 1.055) * _GAMMA)
    return torch.where(x > _ENCODED_BREAK, power, x / 12.92)


def srgb_to_linear(x: Tensor, dim: int = -3) -> Tensor:
    r"""Decode sRGB-encoded values to linear sRGB (the sRGB EOTF).

    .. math::
        C_{lin} = \begin{cases} C / 12.92 & C \le 0.04045 \\
        ((C + 0.055) / 1.055)^{2.4} & C > 0.04045 \end{cases}

    Args:
        x: sRGB-encoded RGB.
        dim: channel axis.

    Returns:
        Linear sRGB, same shape and dtype as ``x``.

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: same as ``x``.

    Note:
        Domain [0, 1] (values outside are allowed; negatives take the linear segment), range [0, 1].
        Agrees with ``colour.models.eotf_sRGB`` (colour-science 0.4.7) to 1e-6; colour-science breaks at
        0.0404499..., the encoded value of 0.0031308, instead of 0.04045, a difference of < 1e-9.

    Example:
        >>> srgb_to_linear(torch.tensor([[0.0, 0.5, 1.0]]), dim=-1)
        tensor([[0.0000, 0.2140, 1.0000]])

    References:
        IEC 61966-2-1:1999.
    """
    check_channel_dim(x, dim)
    return _decode(x, inplace=not _needs_grad(x))


def linear_to_srgb(x: Tensor, dim: int = -3) -> Tensor:
    r"""Encode linear sRGB with the sRGB inverse EOTF.

    .. math::
        C = \begin{cases} 12.92\, C_{lin} & C_{lin} \le 0.0031308 \\
        1.055\, C_{lin}^{1/2.4} - 0.055 & C_{lin} > 0.0031308 \end{cases}

    Args:
        x: linear sRGB.
        dim: channel axis.

    Returns:
        sRGB-encoded RGB, same shape and dtype as ``x``.

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: same as ``x``.

    Note:
        Domain [0, 1] (negatives take the linear segment), range [0, 1]. The power branch is evaluated on
        ``max(x, 0.0031308)`` so its gradient is finite at black. Agrees with
        ``colour.models.eotf_inverse_sRGB`` (colour-science 0.4.7) to 1e-6.

    Example:
        >>> linear_to_srgb(torch.tensor([[0.0, 0.18, 1.0]]), dim=-1)
        tensor([[0.0000, 0.4614, 1.0000]])

    References:
        IEC 61966-2-1:1999.
    """
    check_channel_dim(x, dim)
    power = torch.exp(torch.log(x.clamp(min=_LINEAR_BREAK)) / _GAMMA) * 1.055 - 0.055
    return torch.where(x > _LINEAR_BREAK, power, x * 12.92)


def linear_rgb_to_xyz(x: Tensor, dim: int = -3) -> Tensor:
    """Convert linear sRGB to CIE XYZ (D65, Y of the white = 1).

    Args:
        x: linear sRGB.
        dim: channel axis.

    Returns:
        CIE XYZ tristimulus values, same shape and dtype as ``x``.

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: same as ``x``.

    Note:
        Domain [0, 1], range XYZ with Y in [0, 1]. Uses :data:`SRGB_TO_XYZ_MATRIX` (IEC 61966-2-1, as
        colour-science 0.4.7); ``colour.sRGB_to_XYZ`` agrees to 1e-6. See the module docstring for how it
        differs from the matrix derived from the primaries.

    Example:
        >>> linear_rgb_to_xyz(torch.ones(1, 3), dim=-1)
        tensor([[0.9505, 1.0000, 1.0890]])

    References:
        IEC 61966-2-1:1999.
    """
    pos = check_channel_dim(x, dim)
    return _matmul_channels(x, _as_matrix(SRGB_TO_XYZ_MATRIX, x), pos)


def xyz_to_linear_rgb(x: Tensor, dim: int = -3) -> Tensor:
    """Convert CIE XYZ (D65, Y of the white = 1) to linear sRGB.

    Args:
        x: CIE XYZ tristimulus values.
        dim: channel axis.

    Returns:
        Linear sRGB (not clipped: out-of-gamut colours give values outside [0, 1]).

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: same as ``x``.

    Note:
        Domain XYZ with Y in [0, 1], range [0, 1] for in-gamut colours. Uses :data:`XYZ_TO_SRGB_MATRIX`, the
        exact inverse of :data:`SRGB_TO_XYZ_MATRIX`, so ``xyz_to_linear_rgb(linear_rgb_to_xyz(x)) == x`` to
        rounding.

    Example:
        >>> xyz_to_linear_rgb(torch.tensor([[0.9505, 1.0, 1.089]]), dim=-1).round(decimals=3)
        tensor([[1., 1., 1.]])

    References:
        IEC 61966-2-1:1999.
    """
    pos = check_channel_dim(x, dim)
    return _matmul_channels(x, _as_matrix(XYZ_TO_SRGB_MATRIX, x), pos)


class SrgbToLinear(FunctionModule):
    """Module twin of :func:`srgb_to_linear`."""

    function = staticmethod(srgb_to_linear)

    def __init__(self, dim: int = -3) -> None:
        super().__init__(dim=dim)


class LinearToSrgb(FunctionModule):
    """Module twin of :func:`linear_to_srgb`."""

    function = staticmethod(linear_to_srgb)

    def __init__(self, dim: int = -3) -> None:
        super().__init__(dim=dim)


class LinearRgbToXyz(FunctionModule):
    """Module twin of :func:`linear_rgb_to_xyz`."""

    function = staticmethod(linear_rgb_to_xyz)

    def __init__(self, dim: int = -3) -> None:
        super().__init__(dim=dim)


class XyzToLinearRgb(FunctionModule):
    """Module twin of :func:`xyz_to_linear_rgb`."""

    function = staticmethod(xyz_to_linear_rgb)

    def __init__(self, dim: int = -3) -> None:
        super().__init__(dim=dim)
