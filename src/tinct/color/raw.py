"""Normalisation of camera raw data: black level, white (saturation) level and the unusable-pixel mask.

This is the one colour op that accepts integer tensors, because raw files store integer code values.
Everything downstream works on the float ``linear`` image it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tinct.core.checks import check_positive, check_tensor
from tinct.core.exceptions import ShapeError, TypeCheckError

__all__ = ["LevelLike", "normalize_raw"]

#: A black or saturation level: one number for all channels, or one per channel (sequence or tensor).
LevelLike = float | Sequence[float] | Tensor

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.uint16, torch.int32, torch.int64)


def _level(value: LevelLike, channels: int, name: str) -> Tensor:
    """A level as a float64 CPU tensor of shape (channels,), validated."""
    if isinstance(value, Tensor):
        level = value.detach().to(device="cpu", dtype=torch.float64)
    elif isinstance(value, int | float):
        level = torch.tensor([float(value)], dtype=torch.float64)
    else:
        level = torch.tensor([float(v) for v in value], dtype=torch.float64)
    level = level.reshape(-1)
    if level.numel() == 1:
        level = level.expand(channels)
    if level.numel() != channels:
        raise ShapeError(
            f"{name}: expected one value or {channels} (one per channel), got {level.numel()} values"
        )
    if not torch.isfinite(level).all():
        raise ValueError(f"{name} must be finite, got {level.tolist()}")
    return level


def normalize_raw(
    x: Tensor,
    black: LevelLike = 0.0,
    saturation: LevelLike | None = None,
    *,
    dim: int = -3,
    tolerance: float = 0.0,
) -> tuple[Tensor, Tensor]:
    r"""Map raw code values to linear [0, 1] and flag the pixels that carry no usable colour.

    .. math::
        \mathrm{linear} = \mathrm{clamp}\left(\frac{x - \mathrm{black}}{\mathrm{saturation} - \mathrm{black}},
        0, 1\right)

    A pixel is unusable (``mask`` True) where any channel reached the saturation level (clipped, so its
    chromaticity is wrong) or any channel fell below ``black - tolerance`` (a dead or badly calibrated
    pixel; read noise around the black level is tolerated up to ``tolerance``), or where any value is NaN.

    Args:
        x: raw image, integer (uint8, int8, int16, uint16, int32, int64) or floating.
        black: black level, in the units of ``x``: one number or one per channel.
        saturation: saturation (white) level, in the units of ``x``: one number or one per channel.
            Default: the dtype's maximum for integers (e.g. 65535 for uint16), 1.0 for floats.
        dim: channel axis.
        tolerance: how far below ``black`` a value may fall before the pixel is flagged (>= 0, in the
            units of ``x``).

    Returns:
        ``(linear, mask)``: ``linear`` is float32 for integer input and keeps a floating input's dtype;
        ``mask`` is bool, True where the pixel is unusable.

    Raises:
        TypeCheckError: ``x`` is not a tensor, or has a bool / complex dtype.
        ShapeError: ``dim`` is out of range, or a per-channel level has the wrong length.
        ValueError: ``saturation <= black`` for some channel, a non-finite level, or ``tolerance < 0``.

    Shape:
        - x: :math:`(*, C, H, W)` (``dim=-3``) or :math:`(*, C)` (``dim=-1``), any number of channels C
          (3 for RGB, 4 for packed Bayer planes).
        - linear: same as ``x``.
        - mask: :math:`(*, 1, H, W)` or :math:`(*, 1)`.

    Note:
        Integer inputs up to 16 bits are converted to float32 exactly; int32 / int64 inputs are compared and
        scaled in float64 (exact up to 2**53) and the result is cast to float32. Floating inputs keep their
        dtype and stay differentiable.

    Example:
        >>> raw = torch.tensor([[[[512]], [[4095]], [[2000]]]], dtype=torch.int16)
        >>> linear, mask = normalize_raw(raw, black=512, saturation=4095)
        >>> linear.flatten(), mask.flatten()
        (tensor([0.0000, 1.0000, 0.4153]), tensor([True]))
    """
    check_tensor(x)
    if x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeCheckError(f"input: expected an integer or floating raw tensor, got dtype {x.dtype}")
    integer = not x.dtype.is_floating_point
    if integer and x.dtype not in _INTEGER_DTYPES:
        raise TypeCheckError(
            f"input: unsupported integer dtype {x.dtype}; "
            f"expected one of {', '.join(map(str, _INTEGER_DTYPES))} or a floating dtype"
        )
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise ShapeError(
            f"input: expected a channel axis at dim={dim}, got a tensor of shape {tuple(x.shape)}"
        )
    check_positive(tolerance, "tolerance", allow_zero=True)
    pos = dim % x.ndim
    channels = x.shape[pos]

    if saturation is None:
        saturation = float(torch.iinfo(x.dtype).max) if integer else 1.0
    lo = _level(black, channels, "black")
    hi = _level(saturation, channels, "saturation")
    if not (hi > lo).all():
        raise ValueError(
            f"saturation must be > black for every channel, got black={lo.tolist()}, saturation={hi.tolist()}"
        )

    if integer:
        work = torch.float64 if x.dtype.itemsize >= 4 else torch.float32
        out_dtype = torch.float32
    else:
        work = out_dtype = x.dtype
    xf = x.to(work)
    shape = (channels,) + (1,) * (x.ndim - pos - 1)
    lo_t = lo.to(dtype=work, device=x.device).reshape(shape)
    hi_t = hi.to(dtype=work, device=x.device).reshape(shape)

    bad = (xf >= hi_t) | (xf < lo_t - tolerance)
    if not integer:
        bad = bad | torch.isnan(xf)
    mask = bad.any(dim=pos, keepdim=True)
    linear = ((xf - lo_t) / (hi_t - lo_t)).clamp(0.0, 1.0).to(out_dtype)
    return linear, mask
