"""``tinct colorize`` with object boxes (files or a detector) and instance-aware models; ``model.init``
(fine-tuning a colorizer from a run or weights file)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tinct.cli.main import main
from tinct.colorization.colorize import colorize, load_colorizer
from tinct.colorization.instance import InstanceFusionNet
from tinct.colorization.pretrained import FORMAT
from tinct.colorization.siggraph import SIGGRAPHNet
from tinct.colorization.task import ColorizationTask
from tinct.core.exceptions import ConfigError, RunDirError
from tinct.engine.config import config_from_dict


def _photos(folder: Path, n: int = 2) -> Path:
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.empty((48, 64, 3), np.uint8)
        image[:] = (rng.random(3) * 255).astype(np.uint8)
        image[10:40, 8:40] = (rng.random(3) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / "images" / f"p{i}.png"), image)
        (folder / "labels" / f"p{i}.txt").write_text("0 0.375 0.5208 0.5 0.625\n")
    return folder


def _fused_file(path: Path) -> Path:
    torch.manual_seed(0)
    config = {
        "task": "instance_colorization",
        "data": {"root": "photos"},
        "model": {"stage": "fusion", "width": 0.125, "crop_size": 16, "infer_size": 32},
    }
    cfg = config_from_dict(config)
    net = InstanceFusionNet(0.125, crop_size=16)
    with torch.no_grad():  # the instances weigh: the fused output differs from the full network's
        for module in net.fusion:
            module.instance_weight[-1].bias.fill_(5.0)
    torch.save(
        {"format": FORMAT, "config": cfg.model_dump(mode="json"), "state_dict": net.state_dict()}, path
    )
    return path


def _siggraph_file(path: Path) -> Path:
    cfg = config_from_dict(
        {"task": "colorization", "model": {"arch": "siggraph17", "head": "regression", "width": 0.125}}
    )
    net = SIGGRAPHNet(0.125)
    torch.save(
        {"format": FORMAT, "config": cfg.model_dump(mode="json"), "state_dict": net.state_dict()}, path
    )
    return path


def test_colorize_with_boxes_uses_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "data")
    model = _fused_file(tmp_path / "fused.pt")
    rows = colorize([data / "images"], tmp_path / "with", model, boxes=data / "labels", progress=False)
    assert [r["note"] for r in rows] == ["1 box", "1 box"]
    plain = colorize([data / "images"], tmp_path / "without", model, progress=False)
    assert all("no boxes" in r["note"] for r in plain)
    assert "no boxes given" in capsys.readouterr().err
    a = cv2.imread(str(tmp_path / "with" / "p0_color.png"))
    b = cv2.imread(str(tmp_path / "without" / "p0_color.png"))
    diff = np.abs(a.astype(int) - b.astype(int)).sum(-1)
    assert diff[12:38, 10:38].mean() > diff[:, 50:].mean()  # the boxes change the inside most


def test_boxes_given_to_a_plain_model_are_ignored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _photos(tmp_path / "data", 1)
    rows = colorize(
        [data / "images"], tmp_path / "out", _siggraph_file(tmp_path / "s.pt"), boxes=data, progress=False
    )
    assert rows[0]["note"] == ""
    assert "not instance-aware" in capsys.readouterr().err


def test_cli_instances_boxes_and_detector(tmp_path: Path) -> None:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    data = _photos(tmp_path / "data", 1)
    model = str(_fused_file(tmp_path / "fused.pt"))
    images = str(data / "images")
    assert (
        main(
            [
                "colorize",
                images,
                "--out",
                str(tmp_path / "a"),
                "--model",
                model,
                "--instances",
                "--boxes",
                str(data),
            ]
        )
        == 0
    )
    assert (tmp_path / "a" / "p0_color.png").is_file()
    # A randomly initialised detector from a local file (nothing is downloaded).
    torch.manual_seed(0)
    detector = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    torch.save(detector.state_dict(), tmp_path / "det.pt")
    args = ["colorize", images, "--out", str(tmp_path / "b"), "--model", model]
    det = [
        "--detector",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "--detector-weights",
        str(tmp_path / "det.pt"),
    ]
    assert main([*args, *det]) == 0
    assert (tmp_path / "b" / "p0_color.png").is_file()
    # Bad combinations are one-line errors (exit 2), before any photo.
    assert main([*args, "--detector", "fasterrcnn_mobilenet_v3_large_320_fpn"]) == 2
    assert main([*args, *det, "--boxes", str(data)]) == 2
    assert main([*args, "--detector", "yolo", "--detector-weights", str(tmp_path / "det.pt")]) == 2
    assert main([*args, "--boxes", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "b" / "colorize.csv").read_text().count("error,")


def test_model_init_starts_from_a_colorizer_file(tmp_path: Path) -> None:
    init = _siggraph_file(tmp_path / "s.pt")
    raw = {"task": "colorization", "model": {"arch": "siggraph17", "head": "regression", "width": 0.125}}
    task = ColorizationTask(config_from_dict({**raw, "model": {**raw["model"], "init": str(init)}}))
    task.load_initial_weights()
    expected = load_colorizer(init)[0].net.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in task.net.state_dict().items())
    wide = ColorizationTask(
        config_from_dict({**raw, "model": {**raw["model"], "width": 0.25, "init": str(init)}})
    )
    with pytest.raises(ConfigError, match="does not fit"):
        wide.load_initial_weights()
    missing = ColorizationTask(
        config_from_dict({**raw, "model": {**raw["model"], "init": str(tmp_path / "no")}})
    )
    with pytest.raises(RunDirError, match=r"model\.init not found"):
        missing.load_initial_weights()


def test_export_keeps_batch_norm_statistics_float16_cannot_hold(tmp_path: Path) -> None:
    from tinct.colorization.pretrained import _compact, load_colorizer_file

    net = SIGGRAPHNet(0.125)
    with torch.no_grad():
        net.conv7[-1].running_var.fill_(5.6e5)  # measured in the shipped recipe's run: beyond 65504
    compact = {k: _compact(k, v) for k, v in net.state_dict().items()}
    assert compact["conv7.6.running_var"].dtype == torch.float32
    assert compact["conv1.0.weight"].dtype == torch.float16
    cfg = config_from_dict(
        {"task": "colorization", "model": {"arch": "siggraph17", "head": "regression", "width": 0.125}}
    )
    torch.save(
        {"format": FORMAT, "config": cfg.model_dump(mode="json"), "state_dict": compact}, tmp_path / "c.pt"
    )
    loaded, _ = load_colorizer_file(tmp_path / "c.pt")
    assert all(torch.isfinite(v).all() for v in loaded.net.state_dict().values() if v.is_floating_point())
    assert torch.equal(loaded.net.conv7[-1].running_var, net.conv7[-1].running_var)
