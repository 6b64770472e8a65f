"""Quantisation of the CIELAB ab plane into the 313 in-gamut bins of Zhang, Isola & Efros (2016).

Colorization as multinomial classification: the ab plane is cut into squares of side 10 and the 313
square centres that the sRGB gamut reaches (as published with the paper) are the classes. A target ab
map is soft-encoded over its k nearest bins with Gaussian weights, rare colours are up-weighted with
rebalancing weights derived from the empirical prior, and a predicted distribution is decoded to ab with
the annealed mean.

Domain and range: ab in CIELAB units (about [-110, 110] for sRGB colours; any finite value is accepted and
gets the nearest in-gamut bins); bins are integer multiples of 10 in [-110, 100]; priors and weights are
dimensionless.

Finding the k nearest bins is the hot path of training. Because the bins lie on a regular grid, each
cell of 1 x 1 ab units over [-130, 130)^2 is given, once and lazily per k, the short list of bins that can
be among the k nearest of any point of the cell; a query then ranks only that list (at most 7 bins for
k = 5) with a fixed comparator network instead of searching all 313 bins. Points outside [-130, 130)^2
are ranked against all bins.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40 (bins and prior: the authors' release,
    github.com/richzhang/colorization, ``resources/pts_in_hull.npy`` and ``prior_probs.npy``).
"""

from __future__ import annotations

import functools
import io
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import Tensor, nn

from tinct.color._math import safe_log, tiny
from tinct.core.checks import check_channel_dim, check_floating, check_positive, check_shape, check_tensor

__all__ = [
    "GRID_SIZE",
    "NUM_BINS",
    "ABQuantizer",
    "AnnealedMean",
    "PriorAccumulator",
    "ab_bins",
    "annealed_mean",
    "bin_counts",
    "decode_mean",
    "decode_mode",
    "empirical_prior",
    "nearest_bin",
    "rebalancing_weights",
    "reference_prior",
    "smooth_prior",
    "soft_encode",
    "soft_encode_dense",
]

NUM_BINS = 313
GRID_SIZE = 10

# Lookup table: unit cells over [_LO, _LO + _CELLS)^2. Unit cells with integer edges make the cell of a
# point exact (floor is exact in floating point) and keep every table computation exact in float32.
_LO = -130
_CELLS = 260
# Above this k the candidate lists grow past 16 entries (4 key bits); such k are ranked against all bins.
_MAX_TABLE_K = 12
_PAD = 1.0e4
_CHUNK = 8192


@functools.cache
def _resource(name: str) -> np.ndarray:
    data = (resources.files("tinct.color") / "resources" / name).read_bytes()
    array = np.load(io.BytesIO(data), allow_pickle=False)
    array.setflags(write=False)
    return array


def ab_bins(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The 313 in-gamut ab bin centres of Zhang et al. (2016).

    Args:
        device: device of the result.
        dtype: floating dtype of the result.

    Returns:
        Bin centres, columns (a, b), in CIELAB units: multiples of :data:`GRID_SIZE` in [-110, 100].

    Shape:
        - Output: :math:`(313, 2)`.

    Example:
        >>> ab_bins().shape
        torch.Size([313, 2])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV; ``resources/pts_in_hull.npy``.
    """
    return torch.tensor(_resource("pts_in_hull.npy"), dtype=dtype, device=device)


def reference_prior(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The smoothed empirical ab prior over the 313 bins measured on ImageNet by Zhang et al. (2016).

    Args:
        device: device of the result.
        dtype: floating dtype of the result.

    Returns:
        Probabilities in (0, 1] summing to 1, in the order of :func:`ab_bins` (peak 0.201 at ab = (0, 0)).

    Shape:
        - Output: :math:`(313,)`.

    Example:
        >>> round(reference_prior(dtype=torch.float64).sum().item(), 6)
        1.0

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV; ``resources/prior_probs.npy``.
    """
    return torch.tensor(_resource("prior_probs.npy"), dtype=dtype, device=device)


# ----------------------------------------------------------------------------------------------------
# k nearest bins


def _check_k(k: int) -> int:
    try:
        value = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be an integer in [1, {NUM_BINS}], got {k!r}") from None
    if isinstance(k, bool) or not 1 <= value <= NUM_BINS:
        raise ValueError(f"k must be an integer in [1, {NUM_BINS}], got {k!r}")
    return value


@functools.cache
def _selection_network(n: int, k: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, after which rows 0..k-1 hold the k smallest of n keys, sorted.

    Batcher's odd-even merge sort on the next power of two (absent inputs act as +inf, so comparators
    touching them are dropped), pruned backwards to the comparators that can still reach one of the
    first k outputs (Knuth, TAOCP vol. 3, section 5.3.4).
    """
    size = 1 << max(n - 1, 0).bit_length()
    network = []
    p = 1
    while p < size:
        step = p
        while step >= 1:
            for j in range(step % p, size - step, 2 * step):
                for i in range(min(step, size - j - step)):
                    if (i + j) // (2 * p) == (i + j + step) // (2 * p) and i + j + step < n:
                        network.append((i + j, i + j + step))
            step //= 2
        p *= 2
    needed, pruned = set(range(k)), []
    for i, j in reversed(network):
        if i in needed or j in needed:
            pruned.append((i, j))
            needed |= {i, j}
    return tuple(reversed(pruned))


@functools.cache
def _candidate_table(k: int) -> Tensor:
    """Per unit cell, the bins that can be among the k nearest of some point of the cell.

    A bin is dropped when it is farther than the k-th smallest cell-to-bin *maximum* distance from every
    point of the cell (it always loses to k bins), or when k other bins are at most as far as it at all
    four corners, hence (the difference of squared distances being affine) everywhere in the cell. Both
    tests are exact, so the lists always contain a true k-nearest set; ties are kept or dropped freely.
    Lists are sorted by distance from the cell centre and padded with -1.

    Returns:
        int64 tensor (cells, width), cell index ``(floor(a) - _LO) * _CELLS + floor(b) - _LO``.
    """
    bins = torch.from_numpy(_resource("pts_in_hull.npy").astype(np.float32))
    # Every quantity below is a multiple of 1/4 below 2^22, hence exact in float32.
    h = 0.5
    centres = _LO + h + torch.arange(_CELLS, dtype=torch.float32)
    grid = torch.cartesian_prod(centres, centres)
    offsets = torch.tensor([[-h, -h], [-h, h], [h, -h], [h, h]])
    lists = []
    for start in range(0, grid.shape[0], 4096):
        centre = grid[start : start + 4096]
        da = (centre[:, None, 0] - bins[:, 0]).abs()
        db = (centre[:, None, 1] - bins[:, 1]).abs()
        far = (da + h).square() + (db + h).square()
        near = (da - h).clamp(min=0).square() + (db - h).clamp(min=0).square()
        box = near <= far.topk(k, dim=1, largest=False).values[:, -1:]
        width = int(box.sum(1).max())
        ranked = torch.where(box, da.square() + db.square(), math.inf).topk(width, dim=1, largest=False)
        order, valid = ranked.indices, torch.isfinite(ranked.values)
        corners = centre[:, None, :] + offsets
        dist = (corners[:, :, None, :] - bins[order][:, None, :, :]).square().sum(-1)
        dominates = (dist[:, :, :, None] <= dist[:, :, None, :]).all(1)
        dominates &= valid[:, :, None] & ~torch.eye(width, dtype=torch.bool)
        keep = valid & (dominates.sum(1) < k)
        compact = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
        lists.append(torch.where(keep.gather(1, compact), order.gather(1, compact), -1))
    width = max(int((part >= 0).sum(1).max()) for part in lists)
    lists = [part[:, :width] for part in lists]
    return torch.cat([nn.functional.pad(part, (0, width - part.shape[1]), value=-1) for part in lists])


@dataclass(frozen=True)
class _Table:
    width: int
    coords: Tensor  # (2 * width, cells): a of the candidates, then b; padding far away
    index: Tensor  # (width * cells,) int64, bin index of (candidate, cell)
    position: Tensor  # (width, 1) 0..width-1, in the integer dtype of the sort keys
    network: tuple[tuple[int, int], ...]


@functools.lru_cache(maxsize=32)
def _device_table(k: int, device: torch.device, dtype: torch.dtype) -> _Table:
    lists = _candidate_table(k)
    width = lists.shape[1]
    valid = lists >= 0
    safe = lists.clamp(min=0)
    xy = torch.where(
        valid[..., None], torch.tensor(_resource("pts_in_hull.npy"), dtype=torch.float64)[safe], _PAD
    )
    coords = xy.permute(2, 1, 0).reshape(2 * width, -1).to(device=device, dtype=dtype).contiguous()
    index = safe.t().reshape(-1).to(device=device)
    key_dtype = torch.int64 if dtype == torch.float64 else torch.int32
    position = torch.arange(width, dtype=key_dtype, device=device)[:, None]
    return _Table(width, coords, index, position, _selection_network(width, k))


@functools.lru_cache(maxsize=16)
def _cached_bins(device: torch.device, dtype: torch.dtype) -> Tensor:
    """Internal, never handed out (it could be modified in place): saves a host-to-device copy per call."""
    return ab_bins(device, dtype)


@functools.lru_cache(maxsize=16)
def _bin_columns(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    bins = _cached_bins(device, dtype)
    return bins[:, 0].contiguous(), bins[:, 1].contiguous()


def _rank_with_table(ab2: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """k nearest bins of points (2, N) inside the table: squared distances (k, N) and indices (k, N)."""
    table = _device_table(k, ab2.device, ab2.dtype)
    width, cells = table.width, _CELLS * _CELLS
    floor = ab2.floor()
    cell = torch.add(floor[1], floor[0], alpha=_CELLS).add_(-_LO * (_CELLS + 1)).to(torch.int32)
    diff = table.coords.index_select(1, cell).view(2, width, -1).sub_(ab2[:, None, :]).square_()
    d2 = diff[0] + diff[1]
    # Sort keys: the bits of a non-negative float order like the float; the low bits carry the list
    # position instead, so squared distances within ~2^-20 (float32) or ~2^-49 (float64) of each other
    # rank as ties, broken by list position.
    int_dtype = torch.int64 if d2.dtype == torch.float64 else torch.int32
    low = (1 << max(width - 1, 0).bit_length()) - 1
    key = (d2.view(int_dtype) & ~low).bitwise_or_(table.position)
    if k == 1:
        best = key.amin(0, keepdim=True)
    else:
        rows = list(key.unbind(0))
        spare = torch.empty_like(rows[0])
        for i, j in table.network:
            smaller = torch.minimum(rows[i], rows[j], out=spare)
            torch.maximum(rows[i], rows[j], out=rows[j])
            spare, rows[i] = rows[i], smaller
        best = torch.stack(rows[:k])
    chosen = best & low
    index = table.index.index_select(0, (chosen * cells).add_(cell).view(-1)).view(k, -1)
    # The exact squared distances, not the truncated ones of the keys, make the weights.
    points = torch.arange(d2.shape[1], dtype=int_dtype, device=ab2.device)
    exact = d2.view(-1).index_select(0, chosen.mul_(d2.shape[1]).add_(points).view(-1)).view(k, -1)
    return exact, index


def _rank_all(ab2: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """k nearest bins of points (2, N) against all bins (brute force, chunked)."""
    bx, by = _bin_columns(ab2.device, ab2.dtype)
    dists, indices = [], []
    for start in range(0, ab2.shape[1], _CHUNK):
        part = ab2[:, start : start + _CHUNK]
        d2 = (part[0, :, None] - bx).square_().add_((part[1, :, None] - by).square_())
        best = d2.topk(k, dim=1, largest=False, sorted=True)
        dists.append(best.values.t())
        indices.append(best.indices.t())
    return torch.cat(dists, 1), torch.cat(indices, 1)


def _k_nearest(ab2: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Squared distances (k, N), ascending, and bin indices (k, N) int64 of points (2, N)."""
    if ab2.shape[1] == 0:
        return ab2.new_empty(k, 0), torch.empty(k, 0, dtype=torch.int64, device=ab2.device)
    if k > _MAX_TABLE_K:
        return _rank_all(ab2, k)
    low, high = torch.aminmax(ab2)
    if bool((low >= _LO) & (high < _LO + _CELLS)):
        return _rank_with_table(ab2, k)
    inside = ((ab2 >= _LO) & (ab2 < _LO + _CELLS)).all(0)
    d2, index = _rank_with_table(torch.where(inside, ab2, 0.0), k)
    outside = (~inside).nonzero().squeeze(1)
    far_d2, far_index = _rank_all(ab2.index_select(1, outside), k)
    d2.index_copy_(1, outside, far_d2)
    index.index_copy_(1, outside, far_index)
    return d2, index


def _flatten_ab(ab: Tensor, dim: int) -> tuple[Tensor, int, torch.Size]:
    pos = check_channel_dim(ab, dim, size=2, name="ab")
    moved = ab.movedim(pos, 0)
    compute = ab.dtype if ab.dtype in (torch.float32, torch.float64) else torch.float32
    return moved.reshape(2, -1).to(compute).contiguous(), pos, moved.shape[1:]


def _unflatten(x: Tensor, pos: int, rest: torch.Size) -> Tensor:
    return x.reshape(x.shape[0], *rest).movedim(0, pos).contiguous()


def nearest_bin(ab: Tensor, dim: int = -3) -> Tensor:
    """Index of the nearest in-gamut bin of each ab value (hard quantisation).

    Args:
        ab: a and b in CIELAB units, any finite value (out-of-gamut values get the nearest in-gamut bin).
        dim: channel axis of ``ab`` (-3 for images, -1 for colour lists).

    Returns:
        Bin indices in [0, 313), in the order of :func:`ab_bins`. Equidistant bins are a tie broken
        arbitrarily; non-finite inputs give an unspecified index.

    Shape:
        - ab: :math:`(*, 2, H, W)`.
        - Output: :math:`(*, H, W)`, int64 (the channel axis removed).

    Example:
        >>> ab_bins()[nearest_bin(torch.tensor([[3.0, -12.0], [140.0, 0.0]]), dim=-1)]
        tensor([[  0., -10.],
                [100.,   0.]])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV.
    """
    ab2, _, rest = _flatten_ab(ab, dim)
    with torch.no_grad():
        _, index = _k_nearest(ab2, 1)
    return index.reshape(rest)


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
        >>> weights, indices = soft_encode(torch.zeros(1, 2, 4, 4))
        >>> weights.shape, indices.shape
        (torch.Size([1, 5, 4, 4]), torch.Size([1, 5, 4, 4]))
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


# ----------------------------------------------------------------------------------------------------
# Priors and rebalancing


def bin_counts(ab: Tensor, dim: int = -3) -> Tensor:
    """Histogram of ab values over the 313 bins by nearest bin (the raw, unsmoothed prior counts).

    Sum the results over a dataset (or use :class:`PriorAccumulator`) and pass them to
    :func:`smooth_prior`. Non-finite ab values are skipped.

    Args:
        ab: a and b in CIELAB units.
        dim: channel axis of ``ab``.

    Returns:
        Counts (int64, on the device of ``ab``) in the order of :func:`ab_bins`.

    Shape:
        - ab: :math:`(*, 2, H, W)`.
        - Output: :math:`(313,)`.

    Example:
        >>> bin_counts(torch.zeros(1, 2, 2, 2))[120].item()
        4

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.2.
    """
    index = nearest_bin(ab, dim)
    finite = torch.isfinite(ab).all(dim)
    if not bool(finite.all()):
        index = index[finite]
    return torch.bincount(index.reshape(-1), minlength=NUM_BINS)


def smooth_prior(counts: Tensor, sigma: float = 5.0) -> Tensor:
    """Turn bin counts into the smoothed empirical prior: Gaussian smoothing over the ab plane, sum 1.

    The smoothing convolves the histogram with a sampled Gaussian of standard deviation ``sigma`` on the
    grid of bins and renormalises; over in-gamut bins this is
    :math:`p_q \\propto \\sum_j \\exp(-\\lVert c_q - c_j \\rVert^2 / 2\\sigma^2)\\, n_j`, the same as a
    convolution on the full grid restricted to the gamut (mass spread outside the gamut is dropped).

    Args:
        counts: non-negative counts (any dtype), at least one positive.
        sigma: standard deviation in ab units, >= 0 (0: no smoothing); the paper uses 5.

    Returns:
        Probabilities summing to 1, in the dtype of ``counts`` if floating, else float64.

    Shape:
        - counts: :math:`(313,)`.
        - Output: :math:`(313,)`.

    Example:
        >>> counts = torch.zeros(313, dtype=torch.int64)
        >>> counts[120] = 10
        >>> prior = smooth_prior(counts)
        >>> round(prior.sum().item(), 6), prior.argmax().item()
        (1.0, 120)

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.2.
    """
    check_tensor(counts, "counts")
    check_shape(counts, [str(NUM_BINS)], "counts")
    check_positive(sigma, "sigma", allow_zero=True)
    values = counts.to(counts.dtype if counts.is_floating_point() else torch.float64)
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError("counts must be finite and non-negative")
    if not bool(values.sum() > 0):
        raise ValueError("counts are all zero: there is no sample to estimate a prior from")
    if sigma > 0:
        bins = ab_bins(values.device, values.dtype)
        d2 = (bins[:, None, :] - bins[None, :, :]).square().sum(-1)
        values = torch.exp(-d2 / (2.0 * sigma**2)) @ values
    return values / values.sum()


class PriorAccumulator:
    """Streams bin counts over a dataset; :meth:`prior` gives the smoothed empirical prior.

    Example:
        >>> acc = PriorAccumulator()
        >>> acc.update(torch.zeros(2, 2, 8, 8)).update(torch.full((1, 2, 8, 8), 20.0)).total
        192
        >>> acc.prior().shape
        torch.Size([313])
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(NUM_BINS, dtype=torch.int64)

    def update(self, ab: Tensor, dim: int = -3) -> PriorAccumulator:
        """Add the :func:`bin_counts` of ``ab`` ((*, 2, H, W)); returns ``self``."""
        counts = bin_counts(ab, dim)
        self.counts = self.counts.to(counts.device) + counts
        return self

    @property
    def total(self) -> int:
        """Number of ab values counted so far."""
        return int(self.counts.sum())

    def prior(self, sigma: float = 5.0) -> Tensor:
        """:func:`smooth_prior` of the counts so far (float64, shape (313,))."""
        return smooth_prior(self.counts, sigma)

    def reset(self) -> None:
        """Forget all counts."""
        self.counts = torch.zeros_like(self.counts)


def empirical_prior(ab_or_counts: Tensor | Iterable[Tensor], sigma: float = 5.0, dim: int = -3) -> Tensor:
    """Smoothed empirical ab prior of ab values, of a sequence of ab tensors, or of bin counts.

    Args:
        ab_or_counts: an ab tensor :math:`(*, 2, H, W)`, an iterable of them (e.g. images of different
            sizes, or a data loader yielding ab maps), or counts :math:`(313,)` from :func:`bin_counts`.
        sigma: standard deviation of the smoothing Gaussian in ab units, >= 0; the paper uses 5.
        dim: channel axis of the ab tensors.

    Returns:
        Probabilities summing to 1 (float64 unless floating counts were given).

    Shape:
        - Output: :math:`(313,)`.

    Example:
        >>> prior = empirical_prior(torch.zeros(1, 2, 4, 4))
        >>> prior.argmax().item(), round(prior.sum().item(), 6)
        (120, 1.0)

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.2.
    """
    if isinstance(ab_or_counts, Tensor):
        if ab_or_counts.ndim == 1 and ab_or_counts.shape[0] == NUM_BINS:
            return smooth_prior(ab_or_counts, sigma)
        return smooth_prior(bin_counts(ab_or_counts, dim), sigma)
    accumulator = PriorAccumulator()
    for ab in ab_or_counts:
        accumulator.update(ab, dim)
    return accumulator.prior(sigma)


def rebalancing_weights(prior: Tensor, lam: float = 0.5) -> Tensor:
    """Class-rebalancing weights :math:`w \\propto ((1 - \\lambda) p + \\lambda / Q)^{-1}`, with E_p[w] = 1.

    Mixing the prior with the uniform distribution and inverting boosts rare (saturated) colours; the
    normalisation :math:`\\sum_q p_q w_q = 1` keeps the expected loss scale. With :func:`reference_prior`
    and lambda = 0.5 the weights run from 0.097 (grey) to 6.17.

    Args:
        prior: non-negative probabilities (renormalised to sum 1 here), e.g. :func:`reference_prior`.
        lam: weight of the uniform distribution, in [0, 1]; the paper uses 0.5. lam = 0 needs a prior
            without zeros.

    Returns:
        Weights > 0, in the dtype of ``prior``.

    Shape:
        - prior: :math:`(Q,)`, Q = 313 for the bins of this module.
        - Output: :math:`(Q,)`.

    Example:
        >>> w = rebalancing_weights(reference_prior(dtype=torch.float64))
        >>> round(w.min().item(), 3), round(w.max().item(), 2)
        (0.097, 6.17)

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, equation 4.
    """
    check_floating(prior, "prior")
    check_shape(prior, ["Q"], "prior")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if not bool(torch.isfinite(prior).all()) or bool((prior < 0).any()) or not bool(prior.sum() > 0):
        raise ValueError("prior must be finite, non-negative and not all zero")
    p = prior / prior.sum()
    mixed = (1.0 - lam) * p + lam / p.shape[0]
    if bool((mixed == 0).any()):
        raise ValueError("lam = 0 with a prior that has zero bins gives infinite weights; use lam > 0")
    weights = mixed.reciprocal()
    return weights / (p * weights).sum()


# ----------------------------------------------------------------------------------------------------
# Decoding


def _check_temperature(temperature: float) -> float:
    if not 0.0 <= temperature < math.inf:
        raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
    return temperature


def _expectation(probs: Tensor, pos: int) -> Tensor:
    bins = _cached_bins(probs.device, probs.dtype)
    return torch.tensordot(probs.movedim(pos, -1), bins, dims=1).movedim(-1, pos)


def decode_mode(logits: Tensor, dim: int = -3) -> Tensor:
    """Decode a distribution over the 313 bins to the ab centre of its most probable bin.

    Args:
        logits: logits or probabilities (the mode is the same).
        dim: bin axis of ``logits``.

    Returns:
        ab in CIELAB units (bin centres), in the dtype of ``logits``. Not differentiable.

    Shape:
        - logits: :math:`(*, 313, H, W)`.
        - Output: :math:`(*, 2, H, W)`.

    Example:
        >>> logits = torch.zeros(1, 313, 1, 1)
        >>> logits[0, 120] = 1.0
        >>> decode_mode(logits).flatten().tolist()
        [0.0, 0.0]

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.3.
    """
    pos = check_channel_dim(logits, dim, size=NUM_BINS, name="logits")
    index = logits.detach().argmax(pos)
    return _cached_bins(logits.device, logits.dtype)[index].movedim(-1, pos)


def annealed_mean(
    logits: Tensor, temperature: float = 0.38, dim: int = -3, *, from_probs: bool = False
) -> Tensor:
    """Decode a distribution over the 313 bins to ab with the annealed mean of Zhang et al. (2016).

    :math:`f_T(z) = \\exp(\\log z / T) / \\sum_q \\exp(\\log z_q / T)` re-sharpens the predicted
    distribution z, then the expectation over the bin centres is taken. With z = softmax(logits) this is
    softmax(logits / T). T = 1 gives the mean (desaturated), T -> 0 the mode (vivid but patchy); the
    paper uses T = 0.38. T = 0 is handled exactly as the mode.

    Args:
        logits: network outputs (``from_probs=False``) or probabilities z in [0, 1] (``from_probs=True``;
            zeros are allowed).
        temperature: T >= 0.
        dim: bin axis of ``logits``.
        from_probs: interpret ``logits`` as probabilities.

    Returns:
        ab in CIELAB units, within the convex hull of the bins, differentiable (for T > 0).

    Shape:
        - logits: :math:`(*, 313, H, W)`.
        - Output: :math:`(*, 2, H, W)`.

    Example:
        >>> logits = torch.zeros(1, 313, 1, 1)
        >>> logits[0, 120] = 100.0
        >>> annealed_mean(logits).abs().max().item() < 1e-6
        True

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.3, equation 5.
    """
    pos = check_channel_dim(logits, dim, size=NUM_BINS, name="logits")
    _check_temperature(temperature)
    if temperature == 0:
        return decode_mode(logits, dim)
    scores = safe_log(logits, tiny(logits)) if from_probs else logits
    return _expectation(torch.softmax(scores / temperature, dim=pos), pos)


def decode_mean(logits: Tensor, dim: int = -3, *, from_probs: bool = False) -> Tensor:
    """Decode to the mean ab of the predicted distribution: :func:`annealed_mean` with T = 1.

    Args:
        logits: logits, or probabilities with ``from_probs=True``.
        dim: bin axis of ``logits``.
        from_probs: interpret ``logits`` as probabilities.

    Returns:
        ab in CIELAB units, differentiable.

    Shape:
        - logits: :math:`(*, 313, H, W)`.
        - Output: :math:`(*, 2, H, W)`.

    Example:
        >>> decode_mean(torch.zeros(313, 1, 1)).shape
        torch.Size([2, 1, 1])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 2.3.
    """
    return annealed_mean(logits, 1.0, dim, from_probs=from_probs)


# ----------------------------------------------------------------------------------------------------
# Modules


class ABQuantizer(nn.Module):
    """The ab quantiser as a module: soft encoding of targets and decoding of predictions.

    The bins are held as a (non-persistent) buffer ``bins`` (313, 2), so they follow ``.to(device)``.

    Args:
        k: bins per soft-encoded value, in [1, 313]; the paper uses 5.
        sigma: Gaussian standard deviation in ab units, > 0; the paper uses 5.
        dim: channel axis of the ab and logit tensors.

    Example:
        >>> quantizer = ABQuantizer()
        >>> weights, indices = quantizer(torch.zeros(1, 2, 4, 4))
        >>> quantizer.decode(torch.zeros(1, 313, 4, 4)).shape
        torch.Size([1, 2, 4, 4])
    """

    bins: Tensor

    def __init__(self, k: int = 5, sigma: float = 5.0, dim: int = -3) -> None:
        super().__init__()
        self.k = _check_k(k)
        self.sigma = check_positive(sigma, "sigma")
        self.dim = dim
        self.register_buffer("bins", ab_bins(), persistent=False)

    def forward(self, ab: Tensor) -> tuple[Tensor, Tensor]:
        return soft_encode(ab, self.k, self.sigma, self.dim)

    def soft_encode(self, ab: Tensor) -> tuple[Tensor, Tensor]:
        """:func:`soft_encode` with this module's k and sigma."""
        return soft_encode(ab, self.k, self.sigma, self.dim)

    def soft_encode_dense(self, ab: Tensor) -> Tensor:
        """:func:`soft_encode_dense` with this module's k and sigma."""
        return soft_encode_dense(ab, self.k, self.sigma, self.dim)

    def nearest(self, ab: Tensor) -> Tensor:
        """:func:`nearest_bin`."""
        return nearest_bin(ab, self.dim)

    def decode(self, logits: Tensor, temperature: float = 0.38, *, from_probs: bool = False) -> Tensor:
        """:func:`annealed_mean` (T = 0: mode, T = 1: mean)."""
        return annealed_mean(logits, temperature, self.dim, from_probs=from_probs)

    def extra_repr(self) -> str:
        return f"k={self.k}, sigma={self.sigma}, dim={self.dim}"


class AnnealedMean(nn.Module):
    """Module twin of :func:`annealed_mean`.

    Args:
        temperature: T >= 0; the paper uses 0.38.
        dim: bin axis of the input.
        from_probs: the input holds probabilities rather than logits.

    Example:
        >>> AnnealedMean(0.38)(torch.zeros(2, 313, 4, 4)).shape
        torch.Size([2, 2, 4, 4])
    """

    def __init__(self, temperature: float = 0.38, dim: int = -3, from_probs: bool = False) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.dim = dim
        self.from_probs = from_probs

    def forward(self, logits: Tensor) -> Tensor:
        return annealed_mean(logits, self.temperature, self.dim, from_probs=self.from_probs)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, dim={self.dim}, from_probs={self.from_probs}"
