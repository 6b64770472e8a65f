"""Soft encoding of ab targets over their k nearest bins with Gaussian weights, sparse or dense.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40, section 2.1 (the original implementation: class ``NNEncode``
    of ``caffe_traininglayers.py`` in github.com/richzhang/colorization).
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
from torch import Tensor

from tinct.color.quantize.bins import NUM_BINS, _bin_columns
from tinct.color.quantize.nearest import _flatten_ab, _k_nearest, _unflatten
from tinct.core.checks import check_positive

__all__ = ["soft_encode", "soft_encode_dense"]


def _check_k(k: int) -> int:
    try:
        value = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be an integer in [1, {NUM_BINS}], got {k!r}") from None
    if isinstance(k, bool) or not 1 <= value <= NUM_BINS:
        raise ValueError(f"k must be an integer in [1, {NUM_BINS}], got {k!r}")
    return value


def soft_encode(ab: Tensor, k: int = 5, sigma: float = 5.0, dim: int = -3) -> tuple[Tensor, Tensor]:
    """Soft-encode ab values over their k nearest in-gamut bins with Gaussian weights.

    The weight of the j-th nearest bin at squared distance :math:`d_j^2` is
    :math:`\\exp(-d_j^2 / 2\\sigma^2) / \\sum_i \\exp(-d_i^2 / 2\\sigma^2)`; the paper uses k = 5 and
    sigma = 5. The result is the exact k nearest (the same as a brute-force search or scikit-learn's
    ``NearestNeighbors``), except that equidistant bins (ties, and squared distances equal to about
    2^-20 relative in float32, 2^-49 in float64) may be ordered or chosen differently.

    Args:
        ab: a and b in CIELAB units, any finite value. float16/bfloat16 are computed in float32.
        k: number of bins, in [1, 313]. k <= 12 use a lookup table; larger k search all bins (slower).
        sigma: standard deviation of the Gaussian, in ab units, > 0.
        dim: channel axis of ``ab`` (-3 for images, -1 for colour lists).

    Returns:
        ``(weights, indices)``: weights in [0, 1] summing to 1 over the k axis, and bin indices (int64)
        sorted by distance (index 0 is the nearest bin, with the largest weight, >= 1/k). The weights are
        differentiable with respect to ``ab`` (the choice of bins is not).

    Shape:
        - ab: :math:`(*, 2, H, W)`.
        - Output: two tensors :math:`(*, k, H, W)` (the channel axis replaced by k).

    Note:
        Weights are computed relative to the nearest bin, so they stay finite (and become one-hot) far
        outside the gamut, where the original implementation divides 0 by 0. Non-finite inputs give NaN
        weights.

    Example:
        >>> import torch
        >>> weights, indices = soft_encode(torch.zeros(1, 2, 4, 4))
        >>> weights.shape, indices.shape
        (torch.Size([1, 5, 4, 4]), torch.Size([1, 5, 4, 4]))
        >>> from tinct.color.quantize import ab_bins
        >>> ab_bins()[indices[0, 0, 0, 0]]
        tensor([0., 0.])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.1.
    """
    k = _check_k(k)
    check_positive(sigma, "sigma")
    ab2, pos, rest = _flatten_ab(ab, dim)
    with torch.no_grad():
        d2, index = _k_nearest(ab2, k)
    if ab2.requires_grad and torch.is_grad_enabled():
        bx, by = _bin_columns(ab2.device, ab2.dtype)
        flat = index.view(-1)
        d2 = (bx.index_select(0, flat).view_as(index) - ab2[0]).square() + (
            by.index_select(0, flat).view_as(index) - ab2[1]
        ).square()
        weights = torch.softmax(d2 / (-2.0 * sigma**2), dim=0)
    else:
        weights = torch.sub(d2[:1], d2).mul_(1.0 / (2.0 * sigma**2)).exp_()
        weights = weights.div_(weights.sum(0, keepdim=True))
    return _unflatten(weights.to(ab.dtype), pos, rest), _unflatten(index, pos, rest)


def soft_encode_dense(ab: Tensor, k: int = 5, sigma: float = 5.0, dim: int = -3) -> Tensor:
    """:func:`soft_encode` scattered into a distribution over all 313 bins (zero outside the k nearest).

    Args:
        ab: a and b in CIELAB units, any finite value.
        k: number of bins with non-zero weight, in [1, 313].
        sigma: standard deviation of the Gaussian, in ab units, > 0.
        dim: channel axis of ``ab``.

    Returns:
        Target distribution in [0, 1], summing to 1 over the bin axis, in the order of :func:`ab_bins`.

    Shape:
        - ab: :math:`(*, 2, H, W)`.
        - Output: :math:`(*, 313, H, W)`.

    Note:
        The dense target is 313/k times larger than the sparse one and writing it costs more than the
        search itself; losses should prefer the sparse form (a gather of k log-probabilities per pixel).

    Example:
        >>> import torch
        >>> soft_encode_dense(torch.zeros(2, 2, 3, 3)).sum(1).allclose(torch.ones(2, 3, 3))
        True

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.1.
    """
    weights, index = soft_encode(ab, k, sigma, dim)
    pos = dim % ab.ndim
    shape = list(weights.shape)
    shape[pos] = NUM_BINS
    # In place: an out-of-place scatter would copy the whole (mostly zero) target once more.
    return _zeros(shape, weights).scatter_(pos, index, weights)


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


def _zeros(shape: list[int], like: Tensor) -> Tensor:
    """Zeros like ``like``; large CPU buffers come from numpy's lazily zeroed, huge-page-backed allocation.

    torch's CPU allocator memsets fresh memory page by page (4 KiB page faults: ~48 ms for the 82 MB
    target of one 256x256 map here), while numpy gets zeroed pages from the kernel and asks for
    transparent huge pages (madvise), which makes the later scatter fault in 2 MiB at a time (~0.02 ms to
    allocate). The result is an ordinary writable tensor sharing numpy's memory.
    """
    numel = math.prod(shape)
    if like.device.type == "cpu" and like.dtype in _NUMPY_DTYPES and numel * like.element_size() >= 1 << 22:
        return torch.from_numpy(np.zeros(shape, dtype=_NUMPY_DTYPES[like.dtype]))
    return like.new_zeros(shape)
