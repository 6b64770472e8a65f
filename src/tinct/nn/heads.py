"""Heads that turn a backbone's feature map into predictions."""

from __future__ import annotations

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
    """FC4's confidence-weighted pooling: every location votes for an RGB illuminant with a confidence.

    A 1x1 conv (after an optional hidden 1x1 layer) predicts 4 channels per location: a non-negative
    RGB estimate and a non-negative confidence; the output is the confidence-weighted sum of the local
    estimates (normalising it is left to the caller). Semantically rich, unambiguous regions learn high
    confidence; flat, ambiguous ones low.

    Shape:
        ``(B, C, h, w)`` -> ``(B, 3)``; :meth:`confidence` gives the ``(B, 1, h, w)`` map.

    References:
        Hu, Y., Wang, B., Lin, S. (2017). FC4: Fully convolutional color constancy with confidence-weighted
        pooling. CVPR.
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
        """Per-location ``(rgb (B, 3, h, w), confidence (B, 1, h, w))``."""
        out = self.net(features)
        return out[:, :3], out[:, 3:]

    def confidence(self, features: Tensor) -> Tensor:
        return self.local(features)[1]

    def forward(self, features: Tensor) -> Tensor:
        rgb, conf = self.local(features)
        return (rgb * conf).sum(dim=(-2, -1)) / conf.sum(dim=(-2, -1)).clamp_min(1e-6)
