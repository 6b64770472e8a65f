"""The ab quantiser as one ``nn.Module``: the bins, soft encoding of targets and decoding of predictions.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666. https://doi.org/10.1007/978-3-319-46487-9_40
"""

from __future__ import annotations

from torch import Tensor, nn

from tinct.color.quantize.bins import ab_bins
from tinct.color.quantize.decode import annealed_mean
from tinct.color.quantize.encode import _check_k, soft_encode, soft_encode_dense
from tinct.color.quantize.nearest import nearest_bin
from tinct.core.checks import check_positive

__all__ = ["ABQuantizer"]


class ABQuantizer(nn.Module):
    """The ab quantiser as a module: soft encoding of targets and decoding of predictions.

    The bins are held as a (non-persistent) buffer ``bins`` (313, 2), so they follow ``.to(device)``.

    Args:
        k: bins per soft-encoded value, in [1, 313]; the paper uses 5.
        sigma: Gaussian standard deviation in ab units, > 0; the paper uses 5.
        dim: channel axis of the ab and logit tensors.

    Example:
        >>> import torch
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
