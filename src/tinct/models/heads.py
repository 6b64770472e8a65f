"""Heads that turn a backbone's feature map into predictions."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["PooledRegressionHead"]


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
