"""Decoding of a predicted distribution over the bins to ab: the mode, the mean and the annealed mean.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40, section 2.3, equation 5.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tinct.color._math import safe_log, tiny
from tinct.color.quantize.bins import NUM_BINS, _cached_bins
from tinct.core.checks import check_channel_dim

__all__ = ["AnnealedMean", "annealed_mean", "decode_mean", "decode_mode"]


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
