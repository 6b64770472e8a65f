"""Colorization encoders as classification backbones, and the heads put on them.

:class:`ColorizationEncoder` holds blocks 1-N (N <= 7) of the ECCV16 or SIGGRAPH17 colorization network with
their own module layout, so the weights of a colorization run or exported colorizer load into it
(:meth:`ColorizationEncoder.load_colorizer`) and its features per block are what the linear probes read
(:meth:`ColorizationEncoder.forward_blocks`). Its input comes from sRGB by :meth:`ColorizationEncoder.prepare`:
the lightness as the colorizers see it (``(L - 50) / 100``, plus the SIGGRAPH17 net's empty hint channels),
or for a classifier trained on colour from scratch the three CIELAB channels ``(L - 50) / 100, a / 110,
b / 110`` (a grayscale photo is then ``a = b = 0``, exactly the lightness-only information).

Heads: ``seed`` is the design of the study that adapted InstColorization's network to classify fruit by
colour (the encoder's first 5 blocks, then 4 convolutions and a linear layer): here 4 x (3x3 convolution,
BatchNorm, ReLU) at the last block's channels, strides 2, 1, 2, 1, global average pooling and a linear
layer; ``linear`` is global average pooling and a linear layer.
"""

from __future__ import annotations

import os
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ColorizationEncoder", "ImageClassifier", "SeedHead", "encoder_blocks"]

#: Encoder blocks of both colorization networks.
MAX_BLOCKS = 7


def encoder_blocks(net: nn.Module) -> list[nn.Module]:
    """Blocks 1-7 of an ECCV16 (``encoder``) or SIGGRAPH17 (``conv1`` ... ``conv7``) colorization network."""
    if hasattr(net, "encoder"):
        return list(net.encoder)
    return [getattr(net, f"conv{i + 1}") for i in range(MAX_BLOCKS)]


class ColorizationEncoder(nn.Module):
    """Blocks 1-``blocks`` of a colorization network (``arch`` eccv16 or siggraph17 at ``width``).

    Args:
        arch: ``"eccv16"`` (1 input channel; stride-2 convolutions end blocks 1-3) or ``"siggraph17"``
            (L + ab hints + mask; every other pixel is kept before blocks 2-4).
        width: channel multiplier of the colorization network.
        blocks: how many encoder blocks (1-7) to keep.
        color: the encoder sees CIELAB colour (3 channels, trained from scratch) instead of lightness.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` from :meth:`prepare`, H and W multiples of 8.
        - :meth:`forward_blocks`: the output of each block; block ``k`` (1-based) is at 1/2, 1/4, 1/8 of the
          input for k = 1, 2, >= 3 (ECCV16) or 1, 1/2, 1/4, >= 1/8 (SIGGRAPH17).

    Example:
        >>> enc = ColorizationEncoder("siggraph17", width=0.125, blocks=5)
        >>> x = enc.prepare(torch.rand(2, 3, 32, 32))
        >>> x.shape, [tuple(f.shape[1:]) for f in enc.forward_blocks(x)]
        (torch.Size([2, 4, 32, 32]), [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4), (64, 4, 4)])
    """

    def __init__(
        self,
        arch: Literal["eccv16", "siggraph17"] = "siggraph17",
        width: float = 0.25,
        blocks: int = MAX_BLOCKS,
        color: bool = False,
    ) -> None:
        super().__init__()
        if not 1 <= blocks <= MAX_BLOCKS:
            raise ValueError(f"blocks must be 1-{MAX_BLOCKS}, got {blocks}")
        self.arch, self.width, self.color = arch, width, color
        net = self._colorizer()
        self.blocks = nn.ModuleList(encoder_blocks(net)[:blocks])
        #: Output channels of each kept block.
        self.channels = [_out_channels(b) for b in self.blocks]
        self.frozen = 0

    @property
    def in_channels(self) -> int:
        """Input channels: 3 for colour, else the colorization network's (1 for ECCV16, 4 for SIGGRAPH17)."""
        return 3 if self.color else 1 if self.arch == "eccv16" else 4

    def _colorizer(self) -> nn.Module:
        from tinct.colorization.networks import COLORIZERS

        return COLORIZERS.get(self.arch)(width=self.width, in_channels=self.in_channels)

    def prepare(self, rgb: Tensor) -> Tensor:
        """The encoder's input for sRGB photos ``(B, 3, H, W)`` in [0, 1] (computed in float32)."""
        from tinct.color.lab import rgb_to_lab

        with torch.autocast(rgb.device.type, enabled=False):
            lab = rgb_to_lab(rgb.float())
            lightness = (lab[:, :1] - 50.0) / 100.0
            if self.color:
                return torch.cat([lightness, lab[:, 1:] / 110.0], 1)
            if self.arch == "siggraph17":
                from tinct.colorization.siggraph import hint_input

                return hint_input(lightness)
            return lightness

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The output of every kept block, in order."""
        out = []
        for i, block in enumerate(self.blocks):
            if self.arch == "siggraph17" and i in (1, 2, 3):
                x = x[..., ::2, ::2]
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_blocks(x)[-1]

    def load_colorizer(self, source: str | os.PathLike[str]) -> None:
        """Load the encoder blocks of a colorization run folder, checkpoint or exported ``.pt``.

        Raises:
            RunDirError: ``source`` does not exist or holds no colorizer.
            ConfigError: its network is another architecture or width than this encoder's, or this encoder
                sees colour (colorizers are trained on lightness).
        """
        from tinct.colorization.task import load_network
        from tinct.core.exceptions import ConfigError

        if self.color:
            raise ConfigError(
                "model.init: a colorization encoder was trained on lightness; data.input 'color' trains from "
                "scratch (set model.init: null or data.input: lightness)"
            )
        net = self._colorizer()
        load_network(net, source)
        self.copy_blocks(net)

    def copy_blocks(self, net: nn.Module) -> None:
        """Load the weights of ``net``'s encoder blocks (a colorization network of this architecture and
        width) into this encoder's blocks."""
        for mine, theirs in zip(self.blocks, encoder_blocks(net), strict=False):
            mine.load_state_dict(theirs.state_dict())

    @classmethod
    def of_network(cls, net: nn.Module) -> ColorizationEncoder:
        """All 7 encoder blocks of an ECCV16 or SIGGRAPH17 colorization network, with its weights.

        Raises:
            TypeError: ``net`` is neither.
        """
        from tinct.colorization.networks import ColorizationNet
        from tinct.colorization.siggraph import SIGGRAPHNet

        if isinstance(net, SIGGRAPHNet):
            arch = "siggraph17"
        elif isinstance(net, ColorizationNet):
            arch = "eccv16"
        else:
            raise TypeError(f"a {type(net).__name__}, not an ECCV16 or SIGGRAPH17 colorization network")
        encoder = cls(arch, net.width, MAX_BLOCKS)
        encoder.copy_blocks(net)
        return encoder

    def freeze(self, blocks: int) -> None:
        """Freeze the first ``blocks`` blocks: no gradients, and BatchNorm statistics kept (eval mode)."""
        if not 0 <= blocks <= len(self.blocks):
            raise ValueError(f"cannot freeze {blocks} of {len(self.blocks)} blocks")
        self.frozen = blocks
        for i, block in enumerate(self.blocks):
            block.requires_grad_(i >= blocks)
        self.train(self.training)

    def train(self, mode: bool = True) -> ColorizationEncoder:
        super().train(mode)
        for block in self.blocks[: self.frozen]:
            block.eval()
        return self

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, width={self.width}, color={self.color}, frozen={self.frozen}"


def _out_channels(block: nn.Module) -> int:
    return next(m.num_features for m in reversed(list(block.modules())) if isinstance(m, nn.BatchNorm2d))


class SeedHead(nn.Module):
    """4 x (3x3 convolution, BatchNorm, ReLU) with strides 2, 1, 2, 1, global average pooling, dropout and a
    linear layer (see the module docstring).

    Shape:
        ``(B, C, h, w)`` -> ``(B, classes)``.
    """

    def __init__(self, channels: int, classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for stride in (2, 1, 2, 1):
            layers += [
                nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, classes)

    def forward(self, features: Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(self.convs(features), 1).flatten(1)
        return self.fc(self.dropout(pooled))


class ImageClassifier(nn.Module):
    """A colorization encoder and a head (``seed`` or ``linear``): sRGB photos -> class logits.

    Example:
        >>> model = ImageClassifier(ColorizationEncoder("eccv16", 0.125, blocks=5), classes=3)
        >>> model(model.encoder.prepare(torch.rand(2, 3, 32, 32))).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, encoder: ColorizationEncoder, classes: int, head: str = "seed", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        c = encoder.channels[-1]
        if head == "seed":
            self.head: nn.Module = SeedHead(c, classes, dropout)
        elif head == "linear":
            from tinct.nn.heads import PooledRegressionHead

            self.head = PooledRegressionHead(c, classes, dropout=dropout)
        else:
            raise ValueError(f"head must be 'seed' or 'linear', got {head!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))
