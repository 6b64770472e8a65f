"""Heads that turn a backbone's feature map into predictions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConfidencePoolingHead", "PooledRegressionHead"]


class PooledRegressionHead(nn.Module):
    """Global average pooling, an optional hidden layer, and a linear map to ``out_features``.

    Shape:
        ``(B, C, h, w)`` -> ``(B, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if hidden > 0:
            layers += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
            in_features = hidden
        layers.append(nn.Linear(in_features, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


class ConfidencePoolingHead(nn.Module):
    r"""FC4's confidence-weighted pooling: every location votes for an illuminant direction with a weight.

    A 1x1 conv (after an optional hidden 1x1 layer) predicts 4 non-negative channels per location (a
    softplus): a local RGB estimate :math:`\mathbf{p}_i` and a confidence :math:`c_i`. As in FC4, each local
    estimate is normalised to unit length first, so a location votes with its direction only, and the
    output is

    .. math::
        \mathbf{p} = \sum_i w_i \frac{\mathbf{p}_i}{\lVert \mathbf{p}_i \rVert}, \qquad
        w_i = \frac{c_i}{\sum_j c_j},

    so the weight of a location is its normalised confidence alone, never confidence x norm, and
    :meth:`confidence` returns exactly the map :math:`w` (non-negative, summing to 1 over the locations of
    each image). Semantically rich, unambiguous regions learn high confidence; flat, ambiguous ones low.
    The output has norm at most 1 (less where the votes disagree); normalising it is left to the caller.

    FC4's code makes :math:`w` a softmax over locations of a ReLU output; here it is a softplus divided
    by its sum over locations. Both are positive weights summing to 1; only the parametrisation differs.

    Shape:
        ``(B, C, h, w)`` -> ``(B, 3)``; :meth:`local` gives the ``(B, 3, h, w)`` local estimates (before
        their normalisation) and the ``(B, 1, h, w)`` weights; :meth:`confidence` the weights alone.

    References:
        Hu, Y., Wang, B., Lin, S. (2017). FC4: Fully convolutional color constancy with confidence-weighted
        pooling. CVPR (Eq. 3, and ``fcn.py``'s "separate confidence" branch of the authors' code).
    """

    def __init__(self, in_features: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if hidden > 0:
            layers += [nn.Conv2d(in_features, hidden, 1), nn.ReLU(inplace=True)]
            in_features = hidden
        layers += [nn.Conv2d(in_features, 4, 1), nn.Softplus()]
        self.net = nn.Sequential(*layers)

    def local(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Per-location ``(rgb (B, 3, h, w), weight (B, 1, h, w))``: the raw (un-normalised) local estimates
        and the pooling weights, which sum to 1 over the locations of each image."""
        out = self.net(features)
        conf = out[:, 3:]
        # The floor only guards an all-underflowed map (softplus is positive), where the weights become 0.
        return out[:, :3], conf / conf.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)

    def confidence(self, features: Tensor) -> Tensor:
        """The pooling weights ``(B, 1, h, w)``: non-negative, summing to 1 over locations."""
        return self.local(features)[1]

    def forward(self, features: Tensor) -> Tensor:
        rgb, weight = self.local(features)
        # eps: a local estimate that underflowed to zero votes for nothing instead of dividing by zero.
        return (weight * F.normalize(rgb, dim=1, eps=1e-12)).sum(dim=(-2, -1))
