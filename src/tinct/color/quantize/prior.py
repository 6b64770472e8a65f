"""The ab prior over the bins, the smoothing that makes it, and the class-rebalancing weights derived from it.

Two kinds of object, kept apart so that a prior is never smoothed twice:

- **counts**: the raw histogram, whole numbers of ab values per bin (:func:`bin_counts`,
  :attr:`PriorAccumulator.counts`);
- **prior**: counts smoothed with a Gaussian over the ab plane and normalised to sum 1, the :math:`\tilde p`
  of the paper's equation 4 (:func:`smooth_prior`, :func:`empirical_prior`, :meth:`PriorAccumulator.prior`,
  :func:`reference_prior`).

Only counts can be smoothed: :func:`smooth_prior` refuses values that are not whole numbers, so passing it a
prior (the reference prior, or its own output) is an error rather than a second, silent blur.

:func:`reference_prior` is the release's ``prior_probs.npy``: a prior in this sense. The release's training
code (``PriorFactor`` in ``caffe_traininglayers.py``) uses it as :math:`\tilde p` with no further
smoothing, so tinct does the same; how it was smoothed (the paper says sigma = 5) is not recorded in the
release.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40, section 2.2 and equation 4 (reference prior: the authors'
    release, github.com/richzhang/colorization, ``resources/prior_probs.npy``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from tinct.color.quantize.bins import NUM_BINS, _resource, ab_bins
from tinct.color.quantize.nearest import nearest_bin
from tinct.core.checks import check_floating, check_positive, check_shape, check_tensor

__all__ = [
    "PriorAccumulator",
    "bin_counts",
    "empirical_prior",
    "rebalancing_weights",
    "reference_prior",
    "smooth_prior",
]


def reference_prior(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ImageNet ab prior of Zhang et al. (2016), already smoothed: the release's ``prior_probs.npy``.

    It is a prior, not counts (see the module docstring): use it as it is (:func:`rebalancing_weights`);
    :func:`smooth_prior` refuses it.

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


def bin_counts(ab: Tensor, dim: int = -3) -> Tensor:
    """Histogram of ab values over the 313 bins by nearest bin: the raw counts a prior is smoothed from.

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
        counts: non-negative whole-number counts (any dtype), at least one positive: the raw histogram
            of :func:`bin_counts`, never a prior (a prior is already smoothed).
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

    Raises:
        ValueError: the counts are negative, not finite, all zero, or not whole numbers (a probability
            vector such as :func:`reference_prior` or a result of this function: smoothing it again
            would blur it twice).

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
    if not bool((values == values.round()).all()):
        raise ValueError(
            "smooth_prior takes raw bin counts (whole numbers, from bin_counts or PriorAccumulator), got "
            f"fractional values summing to {float(values.sum()):.6g}: that is a prior (reference_prior() or "
            "the result of smooth_prior / empirical_prior), already smoothed; use it as it is"
        )
    if sigma > 0:
        bins = ab_bins(values.device, values.dtype)
        d2 = (bins[:, None, :] - bins[None, :, :]).square().sum(-1)
        values = torch.exp(-d2 / (2.0 * sigma**2)) @ values
    return values / values.sum()


class PriorAccumulator:
    """Streams bin counts over a dataset; :meth:`prior` smooths them into a prior.

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
    """The prior (smoothed, sum 1) of ab values, of a sequence of ab tensors, or of bin counts.

    Args:
        ab_or_counts: an ab tensor :math:`(*, 2, H, W)`, an iterable of them (e.g. images of different
            sizes, or a data loader yielding ab maps), or counts :math:`(313,)` from :func:`bin_counts`
            (whole numbers; a prior is refused, see :func:`smooth_prior`).
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
