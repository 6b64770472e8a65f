"""The user-guided colorization network of Zhang, Zhu, Isola et al. (SIGGRAPH 2017), with a width multiplier.

Input: four channels, the normalised lightness ``(L - 50) / 100``, the ab hints ``ab / 110`` (zero where no
hint is given) and the hint mask minus 0.5 (:func:`hint_input`). Without hints (all-zero ab, mask -0.5) it is
an automatic colorizer; with hints, a user-guided one.

Encoder: blocks 1-7 of 2-3 convolutions + ReLU, each ending in BatchNorm; between blocks 1-2, 2-3 and 3-4 the
feature map is sub-sampled by 2 (every other pixel, as the original), blocks 5-6 are dilated (2). Decoder: a
U-Net that upsamples three times with transposed convolutions, each time adding a 3x3 convolution of the
encoder's block 3, 2 or 1 (shortcuts). Two heads: 529 logits (a 23 x 23 grid of ab bins of step 10, |ab| <=
110) at 1/4 resolution from block 8, and the regression of ab (``tanh x 110``) at full resolution from block
10, which is the colorizer's output.

The 13 feature stages (``conv1_2`` ... ``conv10_2``, :data:`STAGES`) are where InstColorization fuses instance
features (:mod:`tinct.colorization.instance`): :meth:`SIGGRAPHNet.forward` takes a ``fuse`` callable applied
after each stage, and :meth:`SIGGRAPHNet.forward_stages` returns them.

``width=1.0`` is the paper's network (64 ... 512 channels, 34 M parameters); channels are rounded to multiples
of 8 as for the ECCV16 net. Module names follow the original's blocks (``conv1`` ... ``conv10``, ``up8``,
``short3_8`` ...), each a ``Sequential`` with the original's layer order.

References:
    Zhang, R., Zhu, J.-Y., Isola, P., Geng, X., Lin, A. S., Yu, T., & Efros, A. A. (2017). Real-Time
    User-Guided Image Colorization with Learned Deep Priors. ACM Transactions on Graphics (SIGGRAPH), 36(4);
    the network of the authors' PyTorch release (github.com/richzhang/colorization-pytorch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from tinct.colorization.networks import COLORIZERS, _block, _channels

__all__ = [
    "AB_MAX",
    "GRID_BINS",
    "GRID_STEP",
    "STAGES",
    "SIGGRAPHNet",
    "SIGGRAPHOutput",
    "grid_bin_centers",
    "grid_index",
    "hint_input",
]

#: ab range of the grid (|a|, |b| <= AB_MAX) and the hint / regression scale.
AB_MAX = 110.0
#: Spacing of the grid of ab bins.
GRID_STEP = 10.0
#: Bins per axis (23) and in all (529).
GRID_SIDE = int(2 * AB_MAX / GRID_STEP) + 1
GRID_BINS = GRID_SIDE * GRID_SIDE

#: The 13 feature stages, in order; each is fused by InstColorization's fusion network.
STAGES = (
    "conv1_2",
    "conv2_2",
    "conv3_3",
    "conv4_3",
    "conv5_3",
    "conv6_3",
    "conv7_3",
    "conv8_up",
    "conv8_3",
    "conv9_up",
    "conv9_3",
    "conv10_up",
    "conv10_2",
)

# Blocks 1-7: (convolutions, channels at width 1, dilation).
_ENCODER = ((2, 64, 1), (2, 128, 1), (3, 256, 1), (3, 512, 1), (3, 512, 2), (3, 512, 2), (3, 512, 1))

Fuse = Callable[[int, Tensor], Tensor]


class SIGGRAPHOutput(NamedTuple):
    """The two heads: ``logits`` (B, 529, H/4, W/4) over :func:`grid_bin_centers`, ``ab`` (B, 2, H, W)."""

    logits: Tensor
    ab: Tensor


def grid_bin_centers(dtype: torch.dtype = torch.float32) -> Tensor:
    """The (529, 2) ab centres of the grid bins, a-major (bin ``i * 23 + j`` is ``a = -110 + 10 i``,
    ``b = -110 + 10 j``).

    Example:
        >>> c = grid_bin_centers()
        >>> c.shape, c[0].tolist(), c[-1].tolist(), c[GRID_BINS // 2].tolist()
        (torch.Size([529, 2]), [-110.0, -110.0], [110.0, 110.0], [0.0, 0.0])
    """
    axis = torch.linspace(-AB_MAX, AB_MAX, GRID_SIDE, dtype=dtype)
    return torch.cartesian_prod(axis, axis)


def grid_index(ab: Tensor) -> Tensor:
    """Index of the nearest grid bin of each ab pair: (B, 2, H, W) -> (B, H, W) int64 (clamped to the grid).

    Example:
        >>> grid_index(torch.tensor([[[[0.0]], [[0.0]]]])).item() == GRID_BINS // 2
        True
    """
    q = torch.round((ab.clamp(-AB_MAX, AB_MAX) + AB_MAX) / GRID_STEP).long()
    return q[:, 0] * GRID_SIDE + q[:, 1]


def hint_input(lightness_normalised: Tensor, ab: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    """The network's 4-channel input: ``(L - 50) / 100``, hint ab / 110 (0 outside hints), mask - 0.5.

    Args:
        lightness_normalised: (B, 1, H, W).
        ab: (B, 2, H, W) hint colours in CIELAB units (read only where ``mask`` is 1), or None: no hints.
        mask: (B, 1, H, W) 1 where a hint is given, else 0 (None: no hints).

    Example:
        >>> x = hint_input(torch.zeros(1, 1, 8, 8))
        >>> x.shape, x[0, 3].unique().tolist()
        (torch.Size([1, 4, 8, 8]), [-0.5])
    """
    b, _, h, w = lightness_normalised.shape
    if ab is None or mask is None:
        ab = lightness_normalised.new_zeros(b, 2, h, w)
        mask = lightness_normalised.new_zeros(b, 1, h, w)
    return torch.cat([lightness_normalised, ab * mask / AB_MAX, mask - 0.5], dim=1)


@COLORIZERS.register("siggraph17")
class SIGGRAPHNet(nn.Module):
    """SIGGRAPH17 colorization network: (L, ab hints, mask) -> 529 grid logits at 1/4 and ab at full size.

    Args:
        width: channel multiplier (1.0: the paper's 64-512 channels).
        head: accepted for the config's sake; the network always has both heads (``"classification"`` or
            ``"regression"`` only says which loss a task stresses).
        in_channels: input channels (4: L, ab hints, mask).

    Shape:
        - Input: :math:`(B, 4, H, W)`, H and W multiples of 8 (:class:`~tinct.colorization.networks.Colorizer`
          pads other sizes).
        - Output: :class:`SIGGRAPHOutput`, logits :math:`(B, 529, H/4, W/4)`, ab :math:`(B, 2, H, W)`.

    Example:
        >>> net = SIGGRAPHNet(width=0.125)
        >>> out = net(hint_input(torch.zeros(2, 1, 40, 56)))
        >>> out.logits.shape, out.ab.shape
        (torch.Size([2, 529, 10, 14]), torch.Size([2, 2, 40, 56]))
        >>> [f.shape[-1] for f in net.forward_stages(torch.zeros(1, 4, 16, 16))]
        [16, 8, 4, 2, 2, 2, 2, 4, 4, 8, 8, 16, 16]
    """

    #: Input channels a user must give: lightness, then ab hints and mask (:func:`hint_input`).
    hint_channels = 3

    def __init__(self, width: float = 1.0, head: str = "regression", in_channels: int = 4) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        if head not in ("classification", "regression"):
            raise ValueError(f"head must be 'classification' or 'regression', got {head!r}")
        self.width = width
        self.head = head
        c = [_channels(base, width) for _, base, _ in _ENCODER]
        c_in = in_channels
        for i, (n, _, dilation) in enumerate(_ENCODER):
            self.add_module(f"conv{i + 1}", _block(c_in, c[i], n, 1, dilation))
            c_in = c[i]
        c8, c9, c10 = c[2], c[1], c[1]  # 256, 128, 128 at width 1
        self.up8 = nn.Sequential(nn.ConvTranspose2d(c[6], c8, 4, stride=2, padding=1))
        self.short3_8 = nn.Sequential(nn.Conv2d(c[2], c8, 3, padding=1))
        self.conv8 = nn.Sequential(nn.ReLU(inplace=True), *_block(c8, c8, 2, 1, 1))
        self.up9 = nn.Sequential(nn.ConvTranspose2d(c8, c9, 4, stride=2, padding=1))
        self.short2_9 = nn.Sequential(nn.Conv2d(c[1], c9, 3, padding=1))
        self.conv9 = nn.Sequential(nn.ReLU(inplace=True), *_block(c9, c9, 1, 1, 1))
        self.up10 = nn.Sequential(nn.ConvTranspose2d(c9, c10, 4, stride=2, padding=1))
        self.short1_10 = nn.Sequential(nn.Conv2d(c[0], c10, 3, padding=1))
        self.conv10 = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(c10, c10, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)
        )
        self.classifier = nn.Conv2d(c8, GRID_BINS, 1)
        self.regressor = nn.Sequential(nn.Conv2d(c10, 2, 1), nn.Tanh())
        #: Channels of each of the 13 :data:`STAGES`.
        self.stage_channels = (*c, c8, c8, c9, c9, c10, c10)
        self.num_features = c[6]

    def forward(self, x: Tensor, fuse: Fuse | None = None) -> SIGGRAPHOutput:
        """Both heads; ``fuse(i, features)`` (if given) replaces the features of stage ``i`` (0-12) before
        the network goes on, which is how instance fusion plugs in."""
        f: Fuse = fuse if fuse is not None else (lambda _i, t: t)
        c1 = f(0, self.conv1(x))
        c2 = f(1, self.conv2(c1[..., ::2, ::2]))
        c3 = f(2, self.conv3(c2[..., ::2, ::2]))
        c = f(3, self.conv4(c3[..., ::2, ::2]))
        c = f(4, self.conv5(c))
        c = f(5, self.conv6(c))
        c = f(6, self.conv7(c))
        c = f(7, self.up8(c) + self.short3_8(c3))
        c8 = f(8, self.conv8(c))
        c = f(9, self.up9(c8) + self.short2_9(c2))
        c = f(10, self.conv9(c))
        c = f(11, self.up10(c) + self.short1_10(c1))
        c = f(12, self.conv10(c))
        return SIGGRAPHOutput(self.classifier(c8), self.regressor(c) * AB_MAX)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """The features of the 13 :data:`STAGES` (what an instance network hands to the fusion network)."""
        stages: list[Tensor] = []

        def keep(_i: int, t: Tensor) -> Tensor:
            stages.append(t)
            return t

        self.forward(x, keep)
        return stages

    def forward_features(self, x: Tensor) -> Tensor:
        """Encoder output (block 7), :math:`(B, C, H/8, W/8)`, C = :attr:`num_features` (timm's split; the
        decoder also needs blocks 1-3, which :meth:`forward_stages` gives)."""
        c1 = self.conv1(x)
        c2 = self.conv2(c1[..., ::2, ::2])
        c3 = self.conv3(c2[..., ::2, ::2])
        return self.conv7(self.conv6(self.conv5(self.conv4(c3[..., ::2, ::2]))))

    def forward_head(self, stages: list[Tensor]) -> SIGGRAPHOutput:
        """The decoder and both heads from the encoder stages 1-7 (the first 7 of :meth:`forward_stages`)."""
        c1, c2, c3, c7 = stages[0], stages[1], stages[2], stages[6]
        c8 = self.conv8(self.up8(c7) + self.short3_8(c3))
        c9 = self.conv9(self.up9(c8) + self.short2_9(c2))
        c10 = self.conv10(self.up10(c9) + self.short1_10(c1))
        return SIGGRAPHOutput(self.classifier(c8), self.regressor(c10) * AB_MAX)

    def extra_repr(self) -> str:
        return f"width={self.width}"
