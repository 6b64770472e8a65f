"""The colorization network of Zhang, Isola & Efros (ECCV 2016), with a width multiplier.

Eight blocks of 2-3 convolutions + ReLU, each followed by BatchNorm; no pooling: blocks 1-3 end with a
stride-2 convolution (1/8 resolution), blocks 5-6 are dilated (dilation 2) to widen the receptive field
without losing resolution, block 8 upsamples once with a transposed convolution, and a 1x1 convolution gives
313 logits (one per ab bin) at 1/4 of the input resolution. ``width=1.0`` is the paper's network (64 ... 512
channels, 32 M parameters); ``width=0.25`` (16 ... 128 channels, 2 M parameters) trains on a CPU.

The encoder (blocks 1-7) is exposed as :meth:`ColorizationNet.forward_features` (timm's split), so
instance fusion and transfer to classification reuse it; :meth:`forward_head` is block 8 plus the 1x1
output convolution. ``head="regression"`` replaces the 313 logits by 2 channels (ab / 100): the L2
baseline of the paper.

Input: the L channel normalised as in the original release, ``(L - 50) / 100``.

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, figure 2 and the
    authors' ``colorization_deploy_v2.prototxt`` (github.com/richzhang/colorization).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from tinct.color.quantize import NUM_BINS
from tinct.core.registry import Registry

__all__ = ["COLORIZERS", "ColorizationNet"]

COLORIZERS: Registry[type[nn.Module]] = Registry("colorizer")

# (convolutions, output channels at width 1, stride of the last convolution, dilation): blocks 1-7.
_ENCODER = (
    (2, 64, 2, 1),
    (2, 128, 2, 1),
    (3, 256, 2, 1),
    (3, 512, 1, 1),
    (3, 512, 1, 2),
    (3, 512, 1, 2),
    (3, 512, 1, 1),
)
_DECODER_CHANNELS = 256


def _channels(base: int, width: float) -> int:
    return max(8, round(base * width / 8) * 8) if width != 1.0 else base


def _block(c_in: int, c_out: int, convs: int, stride: int, dilation: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        s = stride if i == convs - 1 else 1
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, stride=s, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers)


@COLORIZERS.register("eccv16")
class ColorizationNet(nn.Module):
    """ECCV16 colorization network: L -> 313 ab-bin logits (or 2 ab values) at 1/4 resolution.

    Args:
        width: channel multiplier (1.0 = the paper's 64-512 channels); channels are rounded to multiples
            of 8, at least 8.
        head: ``"classification"`` (313 logits) or ``"regression"`` (ab / 100, the L2 baseline).
        in_channels: input channels (1: the L channel).

    Shape:
        - Input: :math:`(B, 1, H, W)`, H and W multiples of 8 (other sizes are padded by the callers in
          :mod:`tinct.tasks.colorization`).
        - Output: :math:`(B, 313, H/4, W/4)` (classification) or :math:`(B, 2, H/4, W/4)`.

    Example:
        >>> net = ColorizationNet(width=0.125)
        >>> net(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 313, 16, 16])
        >>> net.forward_features(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 64, 8, 8])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, figure 2.
    """

    def __init__(
        self,
        width: float = 1.0,
        head: Literal["classification", "regression"] = "classification",
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        if head not in ("classification", "regression"):
            raise ValueError(f"head must be 'classification' or 'regression', got {head!r}")
        self.width = width
        self.head = head
        blocks = []
        c_in = in_channels
        for convs, base, stride, dilation in _ENCODER:
            c_out = _channels(base, width)
            blocks.append(_block(c_in, c_out, convs, stride, dilation))
            c_in = c_out
        self.encoder = nn.Sequential(*blocks)
        self.num_features = c_in
        c_dec = _channels(_DECODER_CHANNELS, width)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c_in, c_dec, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_dec, c_dec, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_dec, c_dec, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.out_channels = NUM_BINS if head == "classification" else 2
        self.classifier = nn.Conv2d(c_dec, self.out_channels, 1)

    def forward_features(self, x: Tensor) -> Tensor:
        """Encoder output (blocks 1-7), :math:`(B, C, H/8, W/8)`, C = :attr:`num_features`."""
        return self.encoder(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """Block 8 and the 1x1 output convolution: features -> logits (or ab / 100) at 1/4 resolution."""
        return self.classifier(self.decoder(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"width={self.width}, head={self.head!r}"
