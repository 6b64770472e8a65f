import pytest
import torch

from tinct.core.exceptions import DataError
from tinct.nn.backbones import create_backbone
from tinct.nn.weights import load_weights


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
