"""The reference engine behind :mod:`tinct.constancy.classical`: ``conv2d`` on any device, float64, autograd.

Everything stays differentiable and finite: square roots and powers go through gradient-safe forms, and
``torch.where`` only ever selects between branches that are finite themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.color._math import safe_sqrt, tiny

__all__ = ["magnitude", "norms"]

Bank = Sequence[tuple[np.ndarray, np.ndarray]]


def _reflect_index(n: int, r: int, device: torch.device) -> Tensor:
    """Indices of a length-``n`` axis padded by ``r`` with mirroring (OpenCV's BORDER_REFLECT_101), for any
    ``r`` (``F.pad(mode="reflect")`` refuses ``r >= n``)."""
    i = torch.arange(-r, n + r, device=device)
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def magnitude(x: Tensor, bank: Bank, order: int) -> Tensor:
    """Root-sum-square of the responses to ``bank``'s separable (y, x) kernels, per plane of (B, C, H, W)."""
    b, c, h, w = x.shape
    k = len(bank[0][0])
    r = k // 2
    planes = x.reshape(b * c, 1, h, w)
    planes = planes.index_select(2, _reflect_index(h, r, x.device))
    planes = planes.index_select(3, _reflect_index(w, r, x.device))
    ky = torch.tensor(np.stack([ky for ky, _ in bank]), dtype=x.dtype, device=x.device)
    kx = torch.tensor(np.stack([kx for _, kx in bank]), dtype=x.dtype, device=x.device)
    rows = F.conv2d(planes, ky.view(-1, 1, k, 1))
    resp = F.conv2d(rows, kx.view(-1, 1, 1, k), groups=len(bank))
    mag = resp[:, 0] if order == 0 else safe_sqrt((resp * resp).sum(dim=1))
    return mag.reshape(b, c, h, w)


def _usable(mask: Tensor | None, radius: int) -> Tensor | None:
    """Float weights (B, 1, H, W): 1 where the pixel and its filter support are usable, else 0."""
    if mask is None:
        return None
    if radius == 0 or not bool(mask.any()):
        return (~mask).float()
    k = 2 * radius + 1
    grown = F.max_pool2d(mask.float(), (k, 1), stride=1, padding=(radius, 0))
    grown = F.max_pool2d(grown, (1, k), stride=1, padding=(0, radius))
    return (grown == 0).float()


def _power(x: Tensor, p: float, cache: dict[float, Tensor]) -> Tensor:
    """``x ** p`` for x >= 0; integer powers by repeated squaring (shared through ``cache``), as
    ``torch.pow`` with a float exponent is an order of magnitude slower on a CPU."""
    if p in cache:
        return cache[p]
    if float(p).is_integer() and p <= 64:
        n = int(p)
        half = _power(x, float(n // 2), cache)
        out = half * half if n % 2 == 0 else half * half * x
    else:
        positive = x > 0
        out = torch.where(positive, torch.exp(p * torch.log(torch.where(positive, x, 1.0))), 0.0)
    cache[p] = out
    return out


def _minkowski(mag: Tensor, weight: Tensor | None, ps: Sequence[float]) -> Tensor:
    """Minkowski p-norms (B, len(ps), 3) of non-negative maps (B, 3, H, W) over usable pixels, up to a
    factor shared by the three channels."""
    flat = mag.flatten(2)
    w = None if weight is None else weight.flatten(2).to(flat.dtype)
    if all(p == 1 for p in ps):
        # Gray World: no power, so no rescaling; the weighted sum as a product reads the image once.
        sums = flat.sum(dim=-1) if w is None else torch.matmul(flat, w.transpose(1, 2)).squeeze(-1)
        return sums.unsqueeze(1).expand(-1, len(ps), -1)
    xw = flat if w is None else flat * w
    # The per-image scale cancels in the unit norm; dividing by it keeps x**12 of small edge magnitudes
    # (1e-4 in dark raw images) away from float32 underflow.
    scale = xw.detach().amax(dim=(1, 2), keepdim=True)
    xn = xw / scale.clamp(min=tiny(xw))
    cache: dict[float, Tensor] = {1.0: xn}
    out = []
    for p in ps:
        if math.isinf(p):
            out.append(xn.amax(dim=-1))
            continue
        s = _power(xn, float(p), cache).sum(dim=-1)
        positive = s > 0
        out.append(torch.where(positive, torch.where(positive, s, 1.0) ** (1.0 / p), 0.0))
    return torch.stack(out, dim=1)


def norms(x: Tensor, m: Tensor | None, order: int, ps: Sequence[float], banks: Sequence[Bank]) -> Tensor:
    """Minkowski norms (B, len(banks), len(ps), 3) of (B, 3, H, W) images, up to a factor per image and
    bank; an empty bank means no filtering (sigma = 0)."""
    out = []
    # One image at a time: its temporaries (a few MB) stay in cache and are recycled by the allocator,
    # where a whole batch's would be fresh, page-faulted memory for every elementwise pass.
    for i in range(x.shape[0]):
        xi, mi = x[i : i + 1], None if m is None else m[i : i + 1]
        if order == 0:
            xi = xi.clamp(min=0)  # light cannot be negative; values below black carry no colour
        rows = []
        for bank in banks:
            mag = magnitude(xi, bank, order) if bank else xi
            rows.append(_minkowski(mag, _usable(mi, len(bank[0][0]) // 2 if bank else 0), ps))
        out.append(torch.stack(rows, dim=1))
    return torch.cat(out)
