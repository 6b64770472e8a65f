import logging

import pytest
import torch

from tinct.core.exceptions import DataError
from tinct.nn.backbones import create_backbone, timm_backbone
from tinct.nn.weights import PartialLoadWarning, load_weights


def _small(**kw: int) -> torch.nn.Module:
    return create_backbone("small_cnn", width=kw.get("width", 4), depth=kw.get("depth", 2))


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


def test_load_weights_exact_from_common_layouts(tmp_path) -> None:
    src = _small()
    for i, state in enumerate(
        (
            src.state_dict(),
            {"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}},
            {"model": {f"backbone.{k}": v for k, v in src.state_dict().items()}},
        )
    ):
        torch.save(state, tmp_path / f"w{i}.pth")
        dst = _small()
        done = load_weights(dst, tmp_path / f"w{i}.pth")
        assert done.missing == done.unexpected == done.head == () and len(done.loaded) == len(
            dst.state_dict()
        )
        _assert_same(src, dst)


def test_unexpected_tensors_fail_unless_partial(tmp_path) -> None:
    src = _small()
    path = tmp_path / "w.pth"
    torch.save({"state_dict": src.state_dict() | {"fc.weight": torch.zeros(2)}}, path)
    with pytest.raises(DataError, match=r"w\.pth.*0 missing.*1 of the file's tensors unexpected.*fc\.weight"):
        load_weights(_small(), path)
    dst = _small()
    with pytest.warns(PartialLoadWarning, match=r"1 of the file's tensors unexpected.*fc\.weight"):
        done = load_weights(dst, path, partial=True)
    assert done.unexpected == ("fc.weight",) and done.missing == ()
    _assert_same(src, dst)


def test_missing_tensors_fail_unless_partial(tmp_path) -> None:
    # a depth-2 file into a depth-3 model: the third block stays at its initialisation
    path = tmp_path / "shallow.pth"
    torch.save(_small(depth=2).state_dict(), path)
    deep = _small(depth=3)
    with pytest.raises(
        DataError, match=r"shallow\.pth: \d+ of the model's \d+ tensors loaded; 12 missing .*9 more"
    ):
        load_weights(deep, path)
    with pytest.warns(PartialLoadWarning, match="12 missing"):
        done = load_weights(deep, path, partial=True)
    assert len(done.missing) == 12 and all(int(k.split(".")[1]) >= 12 for k in done.missing)


def test_shape_mismatch_is_unexpected(tmp_path) -> None:
    path = tmp_path / "wide.pth"
    torch.save(_small(width=8).state_dict(), path)
    # only the BatchNorm step counters (scalars) fit: the old loader accepted that silently
    with pytest.raises(DataError, match=r"4 of the model's 24 tensors loaded; 20 missing.*20 of the file's"):
        load_weights(_small(width=4), path)
    mixed = _small(width=4).state_dict()
    mixed["features.0.weight"] = torch.zeros(8, 3, 3, 3)  # another shape under the model's own key
    torch.save(mixed, path)
    with pytest.raises(
        DataError, match=r"1 missing .*features\.0\.weight.*1 of the file's tensors unexpected"
    ):
        load_weights(_small(width=4), path)


def test_named_head_is_dropped_and_logged(tmp_path, caplog) -> None:
    src = _small()
    path = tmp_path / "imagenet.pth"
    head = {"classifier.1.weight": torch.zeros(10, 4), "classifier.1.bias": torch.zeros(10)}
    torch.save(src.state_dict() | head, path)
    dst = _small()
    with caplog.at_level(logging.WARNING, logger="tinct.nn.weights"):
        done = load_weights(dst, path, head=("classifier.",))
    assert done.head == ("classifier.1.bias", "classifier.1.weight") and done.unexpected == ()
    assert "ignored the 2 tensors of the head" in caplog.text and "classifier.1.bias" in caplog.text
    _assert_same(src, dst)
    # the head prefix covers only the head: anything else is still an error
    torch.save(src.state_dict() | head | {"extra.weight": torch.zeros(1)}, path)
    with pytest.raises(DataError, match=r"extra\.weight"):
        load_weights(_small(), path, head=("classifier.",))


def test_torchvision_imagenet_checkpoint_into_backbone(tmp_path, caplog) -> None:
    from torchvision.models import mobilenet_v2

    full = mobilenet_v2(weights=None)  # a torchvision ImageNet checkpoint: features.* plus classifier.*
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(full.state_dict(), path)
    with caplog.at_level(logging.WARNING, logger="tinct.nn.weights"):
        backbone = create_backbone("mobilenet_v2", weights=path)
    assert "classifier.1.weight" in caplog.text
    torch.testing.assert_close(backbone.features[0][0].weight, full.features[0][0].weight)


def test_timm_checkpoint_into_backbone(tmp_path, caplog) -> None:
    import timm

    full = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    path = tmp_path / "resnet10t.pth"
    torch.save(full.state_dict(), path)
    with caplog.at_level(logging.WARNING, logger="tinct.nn.weights"):
        backbone = timm_backbone("resnet10t", str(path))
    assert "fc.weight" in caplog.text
    torch.testing.assert_close(backbone.model.conv1[0].weight, full.conv1[0].weight)


def test_partial_flag_reaches_the_config(tmp_path) -> None:
    from tinct.constancy.task import IlluminantModelConfig, build_backbone

    path = tmp_path / "shallow.pth"
    torch.save(_small(depth=2).state_dict(), path)
    with pytest.raises(DataError, match="partial"):
        build_backbone(IlluminantModelConfig(width=4, depth=3, weights=str(path)))
    with pytest.warns(PartialLoadWarning):
        build_backbone(IlluminantModelConfig(width=4, depth=3, weights=str(path), weights_partial=True))


def test_load_weights_errors(tmp_path) -> None:
    model = _small()
    with pytest.raises(DataError, match="never downloads"):
        load_weights(model, tmp_path / "none.pth")
    torch.save({"x": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="none of its 1 tensors"):
        load_weights(model, tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk\.pth"):
        load_weights(model, tmp_path / "junk.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(DataError, match="expected a state dict"):
        load_weights(model, tmp_path / "list.pth")
