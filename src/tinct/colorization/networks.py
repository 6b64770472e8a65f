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

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.color.quantize import NUM_BINS
from tinct.core.registry import Registry

__all__ = ["COLORIZERS", "ColorizationNet", "Colorizer", "check_temperature", "upsample_rows"]

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
        - Input: :math:`(B, 1, H, W)`, H and W multiples of 8 (:class:`Colorizer` pads other sizes).
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


def check_temperature(temperature: float) -> float:
    """Return ``temperature`` as a float if it is a valid annealed-mean temperature (finite, >= 0; 0 is the
    mode of the distribution, 1 its mean).

    Raises:
        ConfigError: NaN, infinite or negative, or not a number (the message names the value).
    """
    from tinct.core.exceptions import ConfigError

    try:
        t = float(temperature)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"temperature must be a number, got {temperature!r}") from err
    if not 0.0 <= t < math.inf:
        raise ConfigError(
            f"temperature must be a finite number >= 0 (0: the mode, 1: the mean, the paper's 0.38), "
            f"got {temperature}"
        )
    return t


def upsample_rows(x: Tensor, size: tuple[int, int], start: int = 0, stop: int | None = None) -> Tensor:
    """Rows ``start:stop`` of ``F.interpolate(x, size, mode="bilinear", align_corners=False)``, computed
    without the other rows, so a large output can be made strip by strip in bounded memory.

    The source coordinate of output row ``i`` is ``(i + 0.5) * h_in / H - 0.5`` (clamped at 0), as in
    PyTorch; the columns are interpolated by ``F.interpolate`` itself. The strips joined equal the whole up
    to float rounding.

    Shape:
        - x: :math:`(B, C, h_{in}, w_{in})`.
        - Output: :math:`(B, C, stop - start, W)` with ``(H, W) = size``.

    Example:
        >>> x = torch.rand(1, 2, 5, 7)
        >>> whole = F.interpolate(x, size=(23, 31), mode="bilinear", align_corners=False)
        >>> strip = upsample_rows(x, (23, 31), 10, 17)
        >>> bool((strip - whole[..., 10:17, :]).abs().max() < 1e-6)
        True
    """
    h_in = x.shape[-2]
    h, w = size
    stop = h if stop is None else stop
    src = ((torch.arange(start, stop, dtype=torch.float64) + 0.5) * (h_in / h) - 0.5).clamp_(min=0.0)
    i0 = src.floor().long().clamp_(max=h_in - 1)
    i1 = (i0 + 1).clamp_(max=h_in - 1)
    lam = (src - i0).to(x.dtype)[:, None]
    rows = x[..., i0, :] * (1.0 - lam) + x[..., i1, :] * lam
    return F.interpolate(rows, size=(stop - start, w), mode="bilinear", align_corners=False)


class Colorizer(nn.Module):
    """A trained network as a photo colorizer: full-resolution sRGB (or L) in, sRGB and CIELAB out.

    The photo's L is resized so its short side is ``infer_size`` (its long side at most 8 times that) and
    padded by reflection to a multiple of 8; the network predicts ab at 1/4 of that, which is decoded
    (annealed mean at ``temperature``, or the regression output), bilinearly upsampled to the photo's full
    resolution and joined with the photo's own full-resolution L, so the output's lightness is exactly the
    input's.

    :meth:`predict_ab_lowres` stops before the last upsampling, which :func:`upsample_rows` can do strip
    by strip: ``tinct colorize`` colours photos of any size that way, in bounded memory.

    Args:
        net: a :class:`ColorizationNet`.
        temperature: annealed-mean temperature (classification heads): finite and >= 0 (0: the mode).
        l_cent, l_norm: L normalisation the network was trained with.
        infer_size: short side at which the network runs.

    Raises:
        ConfigError: ``temperature`` is NaN, infinite or negative.

    Shape:
        - Input: :math:`(B, 3, H, W)` sRGB in [0, 1], any H and W.
        - Output: ``(rgb, lab)``, each :math:`(B, 3, H, W)`.

    Example:
        >>> colorizer = Colorizer(ColorizationNet(width=0.125), infer_size=32).eval()
        >>> rgb, lab = colorizer(torch.rand(1, 3, 37, 50))
        >>> rgb.shape, lab.shape
        (torch.Size([1, 3, 37, 50]), torch.Size([1, 3, 37, 50]))
    """

    #: Longest side of the network's input, in multiples of ``infer_size`` (photos up to 8:1 are unaffected).
    MAX_ASPECT = 8
    #: Whether the network uses object boxes (:class:`tinct.colorization.instance.InstanceColorizer`).
    uses_boxes = False

    def __init__(
        self, net: nn.Module, temperature: float = 0.38, l_cent: float = 50.0, l_norm: float = 100.0,
        infer_size: int = 256,
    ) -> None:  # fmt: skip
        super().__init__()
        self.net = net
        self.temperature = check_temperature(temperature)
        self.l_cent = l_cent
        self.l_norm = l_norm
        self.infer_size = infer_size

    def decode(self, out: Tensor, temperature: float | None = None) -> Tensor:
        """Network output (logits or ab / 100) -> ab at the network's resolution.

        Raises:
            ConfigError: ``temperature`` is NaN, infinite or negative.
        """
        from tinct.color.quantize import annealed_mean

        t = self.temperature if temperature is None else check_temperature(temperature)
        if out.shape[-3] == 2:
            return out * 100.0
        return annealed_mean(out, t)

    def _scale(self, h: int, w: int) -> float:
        # The short side at infer_size, but the long side at most MAX_ASPECT times that: a 1 x 5000 strip
        # would otherwise be seen at 256 x 1280000.
        return min(self.infer_size / min(h, w), self.MAX_ASPECT * self.infer_size / max(h, w))

    def network_size(self, h: int, w: int) -> tuple[int, int]:
        """The size (before padding to a multiple of 8) at which the network sees an ``h x w`` photo: short
        side ``infer_size``, long side at most :attr:`MAX_ASPECT` times that (panoramas), each at least 8."""
        scale = self._scale(h, w)
        return max(8, round(h * scale)), max(8, round(w * scale))

    def predict_ab_lowres(
        self,
        lightness: Tensor,
        temperature: float | None = None,
        hints: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
    ) -> Tensor:
        """ab for an L map :math:`(B, 1, H, W)` (L* in [0, 100]) at :meth:`network_size`, before the last
        upsampling to :math:`(H, W)` (:meth:`predict_ab`, or :func:`upsample_rows` strip by strip).

        ``hints`` (SIGGRAPH17 nets): ab :math:`(B, 2, h, w)` and mask :math:`(B, 1, h, w)` already at
        :meth:`network_size` (:meth:`tinct.colorization.hints.Hints.rasterize`). ``boxes`` (instance-aware
        colorizers, :attr:`uses_boxes`): :math:`(N, 4)` ``[x0, y0, x1, y1]`` in pixels of ``lightness``.

        Runs on the device of the network; returns ab there.
        """
        h, w = lightness.shape[-2:]
        size = self.network_size(h, w)
        device = next(self.net.parameters()).device
        small = F.interpolate(
            lightness, size=size, mode="bilinear", align_corners=False, antialias=self._scale(h, w) < 1
        ).to(device)
        ph, pw = -size[0] % 8, -size[1] % 8
        x = (small - self.l_cent) / self.l_norm
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(size) > max(ph, pw) else "replicate")
        if hints is not None:
            hints = tuple(F.pad(t.to(device), (0, pw, 0, ph)) for t in hints)  # type: ignore[assignment]
        if boxes is not None:  # photo pixels -> the network's input pixels
            scale = torch.tensor([size[1] / w, size[0] / h, size[1] / w, size[0] / h])
            boxes = (torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4) * scale).to(device)
        return self.network_ab(x, temperature, hints, boxes)[..., : size[0], : size[1]]

    def network_ab(
        self,
        x: Tensor,
        temperature: float | None = None,
        hints: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
    ) -> Tensor:
        """ab at the resolution of the normalised lightness ``x`` :math:`(B, 1, H, W)` (H, W multiples of 8).

        ECCV16 nets: the decoded 1/4-resolution prediction upsampled x 4. Nets with hint channels (SIGGRAPH17):
        their full-resolution regression head, given ``hints`` = (ab :math:`(B, 2, H, W)`, mask
        :math:`(B, 1, H, W)`) or none. ``boxes`` (in pixels of ``x``) only for instance-aware colorizers
        (:class:`tinct.colorization.instance.InstanceColorizer` overrides this method).

        Raises:
            ConfigError: hints for a net without hint channels, or boxes for one that is not instance-aware.
        """
        if boxes is not None:
            from tinct.core.exceptions import ConfigError

            raise ConfigError(
                f"this {type(self.net).__name__} takes no object boxes (an instance-aware model does)"
            )
        if getattr(self.net, "hint_channels", 0):
            from tinct.colorization.siggraph import hint_input

            ab, mask = hints if hints is not None else (None, None)
            return self.net(hint_input(x, ab, mask)).ab
        if hints is not None:
            from tinct.core.exceptions import ConfigError

            raise ConfigError(
                f"this {type(self.net).__name__} takes no colour hints (a SIGGRAPH17 model does)"
            )
        ab = self.decode(self.net(x), temperature)
        return F.interpolate(ab, scale_factor=4.0, mode="bilinear", align_corners=False)

    def predict_ab(
        self,
        lightness: Tensor,
        temperature: float | None = None,
        hints: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
    ) -> Tensor:
        """ab for an L map :math:`(B, 1, H, W)` (L* in [0, 100]) at full resolution :math:`(B, 2, H, W)`."""
        h, w = lightness.shape[-2:]
        ab = self.predict_ab_lowres(lightness, temperature, hints, boxes).to(lightness.device)
        return F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)

    @torch.no_grad()
    def forward(self, rgb: Tensor, temperature: float | None = None) -> tuple[Tensor, Tensor]:
        """Colorize sRGB photos :math:`(B, 3, H, W)` in [0, 1] (their colour is ignored; only L is used).

        Returns:
            ``(rgb, lab)``: the colorized sRGB (clipped to [0, 1]) and its CIELAB before clipping, whose L
            channel is the input's.
        """
        from tinct.color.lab import lab_to_rgb, rgb_to_lab

        lightness = rgb_to_lab(rgb)[:, :1]
        lab = torch.cat([lightness, self.predict_ab(lightness, temperature)], dim=1)
        return lab_to_rgb(lab, clip=True), lab


# Every architecture of COLORIZERS is registered once this module is imported: the SIGGRAPH17 module
# registers itself (it imports this module, which is complete by this line).
from tinct.colorization import siggraph as _siggraph  # noqa: E402, F401
