"""The 313 ab bins of Zhang et al. (2016): bins, nearest-bin search, soft encoding, prior, decoding."""

from tinct.color.quantize.bins import GRID_SIZE, NUM_BINS, ab_bins
from tinct.color.quantize.decode import AnnealedMean, annealed_mean, decode_mean, decode_mode
from tinct.color.quantize.encode import soft_encode, soft_encode_dense
from tinct.color.quantize.nearest import nearest_bin
from tinct.color.quantize.prior import (
    PriorAccumulator,
    bin_counts,
    empirical_prior,
    rebalancing_weights,
    reference_prior,
    smooth_prior,
)
from tinct.color.quantize.quantizer import ABQuantizer

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
