"""The ECCV16 colorization network: the paper's structure, width multiplier, shapes, gradients."""

import pytest
import torch
from torch import nn

from tinct.colorization.networks import COLORIZERS, ColorizationNet


def _convs(block: nn.Module) -> list[nn.Conv2d]:
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)]


def test_paper_structure_at_width_one() -> None:
    # Zhang et al. (2016), figure 2 / colorization_deploy_v2.prototxt: conv1..conv7 with 2, 2, 3, 3, 3, 3, 3
    # convolutions, 64-128-256-512-512-512-512 channels, stride 2 at the end of blocks 1-3, dilation 2 in
    # blocks 5-6, BatchNorm closing each block, no pooling; conv8 upsamples once (256 channels) to 313 logits.
    net = ColorizationNet(width=1.0)
    blocks = list(net.encoder)
    assert [len(_convs(b)) for b in blocks] == [2, 2, 3, 3, 3, 3, 3]
    assert [_convs(b)[-1].out_channels for b in blocks] == [64, 128, 256, 512, 512, 512, 512]
    assert [_convs(b)[-1].stride[0] for b in blocks] == [2, 2, 2, 1, 1, 1, 1]
    assert [_convs(b)[0].dilation[0] for b in blocks] == [1, 1, 1, 1, 2, 2, 1]
    assert all(isinstance(b[-1], nn.BatchNorm2d) for b in blocks)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in net.modules())
    assert isinstance(net.decoder[0], nn.ConvTranspose2d) and net.decoder[0].stride == (2, 2)
    assert net.classifier.out_channels == 313 and net.classifier.kernel_size == (1, 1)
    assert 31e6 < sum(p.numel() for p in net.parameters()) < 33e6


@pytest.mark.parametrize("width", [0.125, 0.25])
@pytest.mark.parametrize("head", ["classification", "regression"])
def test_shapes_and_gradients(width: float, head: str) -> None:
    torch.manual_seed(0)
    net = COLORIZERS.get("eccv16")(width=width, head=head)
    x = torch.randn(2, 1, 48, 64)
    out = net(x)
    assert out.shape == (2, 313 if head == "classification" else 2, 12, 16)
    feats = net.forward_features(x)
    assert feats.shape == (2, net.num_features, 6, 8)
    assert torch.equal(net.forward_head(feats), out)
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_width_multiplier_channels() -> None:
    net = ColorizationNet(width=0.25)
    assert [_convs(b)[-1].out_channels for b in net.encoder] == [16, 32, 64, 128, 128, 128, 128]
    assert ColorizationNet(width=0.01).num_features == 8  # at least 8 channels


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="width"):
        ColorizationNet(width=0)
    with pytest.raises(ValueError, match="head"):
        ColorizationNet(head="ordinal")  # type: ignore[arg-type]
