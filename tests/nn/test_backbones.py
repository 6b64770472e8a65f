import pytest
import torch

from tinct.core.exceptions import DataError, UnknownNameError
from tinct.nn.backbones import BACKBONES, create_backbone, load_weights


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


def test_load_weights_from_local_file(tmp_path) -> None:
    src = create_backbone("small_cnn", width=4, depth=2)
    path = tmp_path / "w.pth"
    torch.save(
        {
            "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}
            | {"fc.weight": torch.zeros(2)}
        },
        path,
    )
    dst = create_backbone("small_cnn", width=4, depth=2)
    ignored = load_weights(dst, path)
    assert ignored == ["fc.weight"]
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_load_weights_errors(tmp_path) -> None:
    model = create_backbone("small_cnn", width=4, depth=2)
    with pytest.raises(DataError, match="never downloads"):
        load_weights(model, tmp_path / "none.pth")
    torch.save({"x": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="none of its 1 tensors"):
        load_weights(model, tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk\.pth"):
        load_weights(model, tmp_path / "junk.pth")
