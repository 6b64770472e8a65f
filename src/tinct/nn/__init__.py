"""Network building blocks: backbones (torchvision adapters, small CNNs), heads, local weight loading."""

from tinct.nn.backbones import BACKBONES, Backbone, SmallCNN, create_backbone, load_weights
from tinct.nn.heads import ConfidencePoolingHead, PooledRegressionHead

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConfidencePoolingHead",
    "PooledRegressionHead",
    "SmallCNN",
    "create_backbone",
    "load_weights",
]
