"""The nearest of the 313 ab bins: :func:`nearest_bin`, and the k-nearest search behind soft encoding.

Finding the k nearest bins is the hot path of training. Because the bins lie on a regular grid, each
cell of 1 x 1 ab units over [-130, 130)^2 is given, once and lazily per k, the short list of bins that can
be among the k nearest of any point of the cell; a query then ranks only that list (at most 7 bins for
k = 5) with a fixed comparator network instead of searching all 313 bins. Points outside [-130, 130)^2
are ranked against all bins.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40
    Knuth, D. E. The Art of Computer Programming, vol. 3, section 5.3.4 (selection networks).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinct.color.quantize.bins import _bin_columns, ab_bins
from tinct.core.checks import check_channel_dim

__all__ = ["nearest_bin"]

# Lookup table: unit cells over [_LO, _LO + _CELLS)^2. Unit cells with integer edges make the cell of a
# point exact (floor is exact in floating point) and keep every table computation exact in float32.
_LO = -130
_CELLS = 260
# Above this k the candidate lists grow past 16 entries (4 key bits); such k are ranked against all bins.
_MAX_TABLE_K = 12
_PAD = 1.0e4
_CHUNK = 8192


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
    bins = ab_bins()
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
    xy = torch.where(valid[..., None], ab_bins(dtype=torch.float64)[safe], _PAD)
    coords = xy.permute(2, 1, 0).reshape(2 * width, -1).to(device=device, dtype=dtype).contiguous()
    index = safe.t().reshape(-1).to(device=device)
    key_dtype = torch.int64 if dtype == torch.float64 else torch.int32
    position = torch.arange(width, dtype=key_dtype, device=device)[:, None]
    return _Table(width, coords, index, position, _selection_network(width, k))


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
