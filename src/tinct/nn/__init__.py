"""Network building blocks: backbones (torchvision adapters, small CNNs), heads, local weight loading."""

from tinct.nn.backbones import BACKBONES, Backbone, SmallCNN, create_backbone, timm_backbone
from tinct.nn.heads import ConfidencePoolingHead, PooledRegressionHead
from tinct.nn.weights import load_weights

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConfidencePoolingHead",
    "PooledRegressionHead",
    "SmallCNN",
    "create_backbone",
    "load_weights",
    "timm_backbone",
]
