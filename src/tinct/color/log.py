"""Log encodings of linear data: a log of intensities and the log-chroma plane of Barron's FFCC.

Colour-constancy models often work in log space, where the illuminant is an additive offset instead of a
per-channel gain. A plain ``log`` is -inf at black, so the intensity encoding adds a small offset
:data:`LOG_EPS` before taking the log, and the log-chroma coordinates do the same per channel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tinct.color._module import FunctionModule
from tinct.core.checks import check_channel_dim, check_floating, check_positive

__all__ = [
    "LOG_EPS",
    "LinearToLog",
    "LogChromaToRgb",
    "LogToLinear",
    "RgbToLogChroma",
    "linear_to_log",
    "log_chroma_to_rgb",
    "log_to_linear",
    "rgb_to_log_chroma",
]

#: Offset added before the log, for linear data in [0, 1]. It sits below the quantisation step of 12-bit
#: raw data (1/4095 = 2.4e-4), so distinct 12-bit codes keep distinct, nearly log-spaced values, and it
#: bounds the encoding of black at log(1e-4) = -9.2 (black maps to a finite value with a finite gradient
#: instead of -inf). For 14- or 16-bit data (steps 6.1e-5, 1.5e-5) the darkest few codes are compressed,
#: which is where sensor noise dominates anyway; pass a smaller ``eps`` to keep them apart.
LOG_EPS: float = 1e-4


def linear_to_log(x: Tensor, eps: float = LOG_EPS) -> Tensor:
    r"""Encode linear values as :math:`\log(\max(x, 0) + \epsilon)`.

    Args:
        x: linear values (any shape).
        eps: offset > 0 added before the log.

    Returns:
        Log values, same shape and dtype as ``x``.

    Note:
        Domain [0, 1] (negatives are treated as 0, with zero gradient), range [log(eps), log(1 + eps)].
        :func:`log_to_linear` inverts it exactly (to rounding) for ``x >= 0``.

    Example:
        >>> linear_to_log(torch.tensor([0.0, 1.0]), eps=1e-4)
        tensor([-9.2103e+00,  1.0001e-04])
    """
    check_floating(x)
    check_positive(eps, "eps")
    return torch.log(x.clamp(min=0) + eps)


def log_to_linear(y: Tensor, eps: float = LOG_EPS) -> Tensor:
    r"""Decode :func:`linear_to_log`: :math:`e^y - \epsilon`.

    Args:
        y: log values (any shape).
        eps: the offset used by the encoding.

    Returns:
        Linear values, same shape and dtype as ``y``.

    Note:
        Domain [log(eps), log(1 + eps)], range [0, 1]. Values below log(eps) decode to small negatives
        (no clamping, so the map stays invertible and its gradient never vanishes).

    Example:
        >>> x = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
        >>> torch.allclose(log_to_linear(linear_to_log(x)), x, rtol=0, atol=1e-12)
        True
    """
    check_floating(y)
    check_positive(eps, "eps")
    return torch.exp(y) - eps


def rgb_to_log_chroma(x: Tensor, dim: int = -3, eps: float = LOG_EPS) -> Tensor:
    r"""Log-chroma coordinates of FFCC: :math:`u = \log(g / r)`, :math:`v = \log(g / b)`.

    Each channel is offset as in :func:`linear_to_log`, i.e.
    :math:`u = \log(\max(g, 0) + \epsilon) - \log(\max(r, 0) + \epsilon)`.

    Args:
        x: linear RGB (image or colour list).
        dim: channel axis.
        eps: offset > 0 added to every channel before the log.

    Returns:
        (u, v) along ``dim``: the channel axis shrinks from 3 to 2.

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - output: :math:`(*, 2, H, W)` or :math:`(*, 2)`.

    Note:
        Domain linear RGB in [0, 1]; range about [-9.2, 9.2] with the default ``eps``. Invariant to the
        overall intensity (up to ``eps``); an illuminant change is a translation of the (u, v) plane.

    Example:
        >>> rgb_to_log_chroma(torch.tensor([[0.5, 0.5, 0.5]]), dim=-1)
        tensor([[0., 0.]])

    References:
        J. T. Barron and Y.-T. Tsai, "Fast Fourier Color Constancy", CVPR 2017, section 2.
    """
    pos = check_channel_dim(x, dim)
    r, g, b = linear_to_log(x, eps).unbind(pos)
    return torch.stack([g - r, g - b], dim=pos)


def log_chroma_to_rgb(uv: Tensor, dim: int = -3) -> Tensor:
    r"""RGB of unit L2 norm from log-chroma (u, v): :math:`(e^{-u}, 1, e^{-v}) / \|(e^{-u}, 1, e^{-v})\|`.

    Args:
        uv: log-chroma coordinates.
        dim: channel axis (of size 2).

    Returns:
        RGB with unit L2 norm along ``dim``.

    Shape:
        - uv: :math:`(*, 2, H, W)` (``dim=-3``) or :math:`(*, 2)` (``dim=-1``).
        - output: :math:`(*, 3, H, W)` or :math:`(*, 3)`.

    Note:
        Domain any real (u, v); range RGB in (0, 1] with unit norm. The exponentials are shifted by their
        maximum before normalising, so large |u|, |v| neither overflow nor lose the other channels.
        Inverse of :func:`rgb_to_log_chroma` for eps -> 0, up to the intensity it discards.

    Example:
        >>> log_chroma_to_rgb(torch.tensor([[0.0, 0.0]]), dim=-1)
        tensor([[0.5774, 0.5774, 0.5774]])

    References:
        J. T. Barron and Y.-T. Tsai, "Fast Fourier Color Constancy", CVPR 2017 (``UvToRgb`` in the
        authors' code).
    """
    pos = check_channel_dim(uv, dim, size=2, name="uv")
    u, v = uv.unbind(pos)
    logs = torch.stack([-u, torch.zeros_like(u), -v], dim=pos)
    rgb = torch.exp(logs - logs.amax(dim=pos, keepdim=True).detach())
    # The largest channel is exactly 1 after the shift, so the norm is >= 1: no guard needed.
    return rgb / torch.linalg.vector_norm(rgb, dim=pos, keepdim=True)


class LinearToLog(FunctionModule):
    """Module twin of :func:`linear_to_log`."""

    function = staticmethod(linear_to_log)

    def __init__(self, eps: float = LOG_EPS) -> None:
        super().__init__(eps=eps)


class LogToLinear(FunctionModule):
    """Module twin of :func:`log_to_linear`."""

    function = staticmethod(log_to_linear)

    def __init__(self, eps: float = LOG_EPS) -> None:
        super().__init__(eps=eps)


class RgbToLogChroma(FunctionModule):
    """Module twin of :func:`rgb_to_log_chroma`."""

    function = staticmethod(rgb_to_log_chroma)

    def __init__(self, dim: int = -3, eps: float = LOG_EPS) -> None:
        super().__init__(dim=dim, eps=eps)


class LogChromaToRgb(FunctionModule):
    """Module twin of :func:`log_chroma_to_rgb`."""

    function = staticmethod(log_chroma_to_rgb)

    def __init__(self, dim: int = -3) -> None:
        super().__init__(dim=dim)
