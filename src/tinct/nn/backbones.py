"""Image backbones behind one interface, registered by name.

Every backbone is an ``nn.Module`` with ``forward_features(x) -> (B, C, h, w)`` and an attribute
``num_features = C`` (timm's split of features and head), so heads can be swapped and features probed.
torchvision architectures are built with random initialisation; ImageNet (or any) weights are loaded only
from a local file the user names (:func:`load_weights`): tinct never downloads. Any timm model becomes a
backbone through :func:`timm_backbone` (timm is optional).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator
from torch import Tensor, nn

from tinct.core.exceptions import ConfigError
from tinct.core.registry import Registry
from tinct.nn.weights import load_weights

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneName",
    "SmallCNN",
    "TimmBackbone",
    "create_backbone",
    "timm_backbone",
]

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")


def _registered(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES.names())}")
    return name


#: A config field holding a backbone name: an unknown name fails when the config is read, not at training.
BackboneName = Annotated[str, AfterValidator(_registered)]


class Backbone(nn.Module):
    """A feature extractor: ``forward_features(x)`` returns a ``(B, num_features, h, w)`` map."""

    num_features: int

    def __init__(self, features: nn.Module, num_features: int) -> None:
        super().__init__()
        self.features = features
        self.num_features = num_features

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


class SmallCNN(Backbone):
    """A small VGG-style CNN that trains in minutes on a CPU: ``depth`` blocks of conv-BN-ReLU, stride 2.

    Args:
        in_channels: input channels.
        width: channels of the first block; doubled every block up to ``8 * width``.
        depth: number of stride-2 blocks (the map shrinks by ``2 ** depth``).
    """

    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 4) -> None:
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * min(2**i, 8)
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        super().__init__(nn.Sequential(*layers), c_in)


def _replace_first_conv(features: nn.Module, in_channels: int) -> None:
    """Swap the first ``Conv2d`` for one with ``in_channels`` inputs (e.g. 2-channel log-chroma input)."""
    for name, module in features.named_modules():
        if isinstance(module, nn.Conv2d):
            new = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                module.stride,  # type: ignore[arg-type]
                module.padding,  # type: ignore[arg-type]
                bias=module.bias is not None,
            )
            parent = features
            *path, last = name.split(".")
            for p in path:
                parent = getattr(parent, p)
            setattr(parent, last, new)
            return
    raise ValueError("backbone has no Conv2d layer to adapt")


def _torchvision_backbone(
    builder: Callable[..., nn.Module],
    num_features: int,
    in_channels: int,
    strip: Callable[[nn.Module], nn.Module],
) -> Backbone:
    features = strip(builder(weights=None))
    if in_channels != 3:
        _replace_first_conv(features, in_channels)
    return Backbone(features, num_features)


@BACKBONES.register("small_cnn")
def small_cnn(in_channels: int = 3, width: int = 16, depth: int = 4) -> Backbone:
    """:class:`SmallCNN`, the CPU default."""
    return SmallCNN(in_channels, width, depth)


@BACKBONES.register("mobilenet_v2")
def mobilenet_v2(in_channels: int = 3, **_: object) -> Backbone:
    """torchvision MobileNetV2 feature stack (1280 channels, stride 32)."""
    from torchvision.models import mobilenet_v2 as tv

    return _torchvision_backbone(tv, 1280, in_channels, lambda m: m.features)


@BACKBONES.register("squeezenet1_1")
def squeezenet1_1(in_channels: int = 3, **_: object) -> Backbone:
    """torchvision SqueezeNet 1.1 feature stack (512 channels), FC4's backbone."""
    from torchvision.models import squeezenet1_1 as tv

    return _torchvision_backbone(tv, 512, in_channels, lambda m: m.features)


@BACKBONES.register("googlenet")
def googlenet(in_channels: int = 3, **_: object) -> Backbone:
    """torchvision GoogLeNet (Inception v1) up to its last inception block (1024 channels)."""
    from torchvision.models import googlenet as tv

    def strip(m: nn.Module) -> nn.Module:
        # transform_input re-normalises ImageNet RGB and would corrupt linear / log inputs, so it is off.
        names = [n for n, _ in m.named_children() if n not in {"aux1", "aux2", "avgpool", "dropout", "fc"}]
        return nn.Sequential(*(getattr(m, n) for n in names))

    return _torchvision_backbone(
        lambda weights: tv(weights=weights, aux_logits=False, init_weights=True, transform_input=False),
        1024,
        in_channels,
        strip,
    )


@BACKBONES.register("resnet18")
def resnet18(in_channels: int = 3, **_: object) -> Backbone:
    """torchvision ResNet-18 up to ``layer4`` (512 channels)."""
    from torchvision.models import resnet18 as tv

    def strip(m: nn.Module) -> nn.Module:
        return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4)

    return _torchvision_backbone(tv, 512, in_channels, strip)


#: Key prefixes of the ImageNet classifier that torchvision's checkpoints hold and these backbones drop.
_TORCHVISION_HEADS: dict[str, tuple[str, ...]] = {
    "mobilenet_v2": ("classifier.",),
    "squeezenet1_1": ("classifier.",),
    "googlenet": ("fc.", "aux1.", "aux2."),
    "resnet18": ("fc.",),
}


def create_backbone(
    name: str,
    in_channels: int = 3,
    weights: str | os.PathLike[str] | None = None,
    partial: bool = False,
    **kwargs: object,
) -> Backbone:
    """Build the backbone registered as ``name``; load ``weights`` from a local file if given.

    The file must match the backbone exactly, except for the classifier head of a torchvision ImageNet
    checkpoint (dropped, with a logged warning); ``partial=True`` accepts any partial match, with a
    :class:`~tinct.nn.weights.PartialLoadWarning` naming what was missing or ignored.
    """
    model = BACKBONES.get(name)(in_channels=in_channels, **kwargs)
    if weights:
        load_weights(model, weights, partial=partial, head=_TORCHVISION_HEADS.get(name, ()))
    return model


class TimmBackbone(nn.Module):
    """A timm model as a tinct backbone: ``forward_features`` always returns ``(B, C, h, w)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_features = int(model.num_features)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        f = self.model.forward_features(x)  # type: ignore[operator]
        if f.ndim == 3:  # transformer tokens (B, N, C) -> a 1 x N map
            return f.transpose(1, 2).unsqueeze(2)
        if f.shape[1] != self.num_features and f.shape[-1] == self.num_features:  # channels-last (Swin)
            return f.permute(0, 3, 1, 2)
        return f


def timm_backbone(name: str, weights: str | None = None, partial: bool = False) -> TimmBackbone:
    """The timm model ``name`` (without its classifier and pooling) as a backbone, random initialisation or
    the local state dict ``weights``; timm is optional, so its absence is a :class:`ConfigError`.

    The file's classifier (timm's ``pretrained_cfg["classifier"]``) is dropped with a logged warning; any
    other mismatch is a :class:`~tinct.core.exceptions.DataError` unless ``partial=True``.
    """
    try:
        import timm
    except ImportError:
        raise ConfigError(
            f"backbone {'timm/' + name!r} needs timm, which is not installed (pip install timm)"
        ) from None
    model = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")
    if weights:
        classifier = model.pretrained_cfg.get("classifier") or ()
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        load_weights(model, weights, partial=partial, head=tuple(f"{h}." for h in heads))
    return TimmBackbone(model)
