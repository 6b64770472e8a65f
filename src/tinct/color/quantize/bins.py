"""The 313 in-gamut ab bins of Zhang, Isola & Efros (2016), the classes of colorization.

Colorization as multinomial classification: the ab plane is cut into squares of side 10 and the 313
square centres published with the paper are the classes (they hold the 261 that the sRGB gamut reaches and
52 beyond it; see ``resources/PROVENANCE.md``). A target ab
map is soft-encoded over its k nearest bins with Gaussian weights (:mod:`~tinct.color.quantize.encode`),
rare colours are up-weighted with rebalancing weights derived from the empirical prior
(:mod:`~tinct.color.quantize.prior`), and a predicted distribution is decoded to ab with the annealed mean
(:mod:`~tinct.color.quantize.decode`).

Domain and range: ab in CIELAB units (about [-110, 110] for sRGB colours; any finite value is accepted and
gets the nearest in-gamut bins); bins are integer multiples of 10 in [-110, 100]; priors and weights are
dimensionless.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40 (bins and prior: the authors' release,
    github.com/richzhang/colorization, ``resources/pts_in_hull.npy`` and ``prior_probs.npy``).
"""

from __future__ import annotations

import functools
import io
from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = ["GRID_SIZE", "NUM_BINS", "ab_bins"]

NUM_BINS = 313
GRID_SIZE = 10


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


@functools.lru_cache(maxsize=16)
def _cached_bins(device: torch.device, dtype: torch.dtype) -> Tensor:
    """Internal, never handed out (it could be modified in place): saves a host-to-device copy per call."""
    return ab_bins(device, dtype)


@functools.lru_cache(maxsize=16)
def _bin_columns(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    bins = _cached_bins(device, dtype)
    return bins[:, 0].contiguous(), bins[:, 1].contiguous()
