"""Backbones (torchvision adapters and CPU-sized CNNs) and heads, registered by name."""

from tinct.models.backbones import BACKBONES, Backbone, SmallCNN, create_backbone, load_weights
from tinct.models.heads import ConfidencePoolingHead, PooledRegressionHead

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConfidencePoolingHead",
    "PooledRegressionHead",
    "SmallCNN",
    "create_backbone",
    "load_weights",
]
