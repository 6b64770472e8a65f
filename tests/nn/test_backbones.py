import pytest
import torch

from tinct.core.exceptions import UnknownNameError
from tinct.nn.backbones import BACKBONES, create_backbone


@pytest.mark.parametrize("name", BACKBONES.names())
def test_forward_backward_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_backbone(name)
    model.train()
    x = torch.rand(2, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.ndim == 4 and feats.shape[:2] == (2, model.num_features)
    feats.mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", ["small_cnn", "squeezenet1_1"])
def test_other_input_channels(name: str) -> None:
    model = create_backbone(name, in_channels=2)
    assert model.forward_features(torch.rand(1, 2, 64, 64)).shape[1] == model.num_features


def test_unknown_backbone_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="mobilenet_v2"):
        create_backbone("resnet9000")
