"""Instance-aware colorization: fusion network, box pasting, box cropping, the three training stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.colorization.boxes import Boxes
from tinct.colorization.colorize import load_colorizer
from tinct.colorization.instance import (
    InstanceColorizer,
    InstanceFusionNet,
    box_cells,
    crop_instances,
)
from tinct.colorization.instance_data import (
    InstanceCrops,
    InstanceDataModule,
    PhotoBoxCrops,
    box_mask,
    collate_boxes,
    crop_boxes,
)
from tinct.colorization.instance_task import InstanceColorizationTask, siggraph_weights
from tinct.colorization.networks import Colorizer
from tinct.colorization.pretrained import _compact, export_colorizer, load_colorizer_file
from tinct.colorization.siggraph import hint_input
from tinct.colorization.task import ColorizationDataModule
from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.engine import train
from tinct.engine.config import config_from_dict
from tinct.engine.run_dir import RunDir, read_checkpoint


def _net(crop_size: int = 16) -> InstanceFusionNet:
    torch.manual_seed(0)
    return InstanceFusionNet(width=0.125, crop_size=crop_size).eval()


def test_instance_colorizer_at_odd_sizes() -> None:
    colorizer = InstanceColorizer(_net(), infer_size=32).eval()
    lightness = torch.rand(1, 1, 37, 53, generator=torch.Generator().manual_seed(0)) * 100
    with torch.no_grad():
        ab = colorizer.predict_ab(
            lightness, boxes=torch.tensor([[5.0, 3.0, 30.0, 36.0], [40.0, 0.0, 53.0, 9.0]])
        )
        plain = colorizer.predict_ab(lightness)
        full = Colorizer(colorizer.net.full, infer_size=32).eval().predict_ab(lightness)
    assert ab.shape == (1, 2, 37, 53) and torch.isfinite(ab).all()
    assert torch.equal(plain, full)  # no boxes: the full-image network


def test_no_boxes_is_the_full_network_exactly() -> None:
    net = _net()
    x = hint_input(torch.rand(2, 1, 24, 40, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        fused = net(x, [torch.zeros(0, 4), torch.zeros(0, 4)])
        full = net.full(x)
        mixed = net(x, [torch.zeros(0, 4), torch.tensor([[2.0, 2.0, 20.0, 18.0]])])
        alone = net.full(x[:1])  # a batch with boxes runs photo by photo
    assert torch.equal(fused.ab, full.ab) and torch.equal(fused.logits, full.logits)
    assert torch.equal(mixed.ab[:1], alone.ab)  # the photo without boxes in a batch with boxes
    assert not torch.allclose(mixed.ab[1:], full.ab[1:])


@pytest.mark.parametrize("stage", [0, 3, 8, 12])
def test_instance_features_land_exactly_in_their_box(stage: int) -> None:
    net = _net()
    module = net.fusion[stage]
    with torch.no_grad():  # all the weight on the instance inside its box: logits +1e4 vs -1e4
        module.full_weight[-1].bias.fill_(-1e4)
        module.instance_weight[-1].bias.fill_(1e4)
    seen: dict[str, Any] = {}
    module.register_forward_hook(lambda _m, args, out: seen.update(args=args, out=out))
    x = hint_input(torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(2)))
    boxes = torch.tensor([[9.0, 5.0, 37.0, 27.0]])
    with torch.no_grad():
        net(x, [boxes])
        expected = net.instance.forward_stages(crop_instances(x, boxes, net.crop_size))[stage]
    full, instances, cells = seen["args"]
    out = seen["out"]
    assert torch.equal(instances, expected)
    assert torch.equal(cells, box_cells(boxes, (32, 48), tuple(full.shape[-2:])))
    x0, y0, x1, y1 = cells[0].tolist()
    pasted = F.interpolate(expected, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
    assert torch.equal(out[..., y0:y1, x0:x1], pasted)
    outside = torch.ones(full.shape[-2:], dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert outside.any() and torch.equal(out[..., outside], full[..., outside])


def _boxes(xyxy: list[list[float]], scores: list[float] | None = None) -> Boxes:
    n = len(xyxy)
    return Boxes(np.array(xyxy, dtype=float).reshape(-1, 4), np.array(scores or [1.0] * n), np.arange(n))


def test_crop_boxes_clips_and_drops() -> None:
    boxes = _boxes(
        [
            [10, 10, 20, 20],  # inside: shifted
            [-0.0, 4, 16, 12],  # 3/4 inside: clipped
            [0, 30, 9, 40],  # 1/9 of it inside the window's height: dropped
            [46, 10, 60, 20],  # 2 px inside: dropped (under 4 px a side)
            [50, 50, 60, 60],  # outside
        ]
    )
    out = crop_boxes(boxes, (4.0, 0.0, 48.0, 32.0))
    assert out.xyxy.tolist() == [[6.0, 10.0, 16.0, 20.0], [0.0, 4.0, 12.0, 12.0]]
    assert out.labels.tolist() == [0, 1]
    assert len(crop_boxes(Boxes.empty(), (0, 0, 8, 8))) == 0


def test_fusion_samples_cut_flip_and_select_boxes() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    boxes = _boxes(
        [[0, 0, 20, 40], [22, 10, 34, 30], [44, 4, 50, 12], [25, 12, 30, 20]], [0.9, 0.95, 1.0, 0.5]
    )
    ds = PhotoBoxCrops([image], [boxes], 32, train=False)  # the centre window: x 14..46, y 4..36
    item = ds[0]
    assert item["image"].shape == (3, 32, 32)
    # box 0: 6 of its 20 px wide inside (under half its area); box 2: 2 px wide inside (under 4 px);
    # box 3: score 0.5, not above 0.7
    assert item["boxes"].tolist() == [[8.0, 6.0, 20.0, 26.0]]
    assert (
        len(PhotoBoxCrops([image], [_boxes([[16, 6, 40, 30]] * 3)], 32, train=False, top_k=2)[0]["boxes"])
        == 2
    )
    # Random crops and flips move the boxes with the pixels: a white stripe in the box stays in it.
    image[:, 20:30] = 255
    torch.manual_seed(0)
    train = PhotoBoxCrops([image], [_boxes([[20, 0, 30, 40]])], 40, train=True, samples_per_epoch=32)
    starts = set()
    for i in range(len(train)):
        item = train[i]
        x0, _, x1, _ = (int(v) for v in item["boxes"][0].tolist())
        columns = item["image"][0].amax(0) > 0.5
        assert columns[x0:x1].all() and columns.sum() == x1 - x0
        starts.add(x0)
    assert len(starts) > 4  # random offsets, flipped or not
    batch = collate_boxes([train[0], train[1]])
    assert batch["image"].shape == (2, 3, 40, 40) and [len(b) for b in batch["boxes"]] == [1, 1]


def test_box_mask_matches_boxes_mask() -> None:
    b = _boxes([[0.2, 1.0, 3.5, 2.6], [4.0, 0.0, 6.0, 1.0]])
    mask = box_mask([torch.tensor(np.array(b.xyxy), dtype=torch.float32)], 4, 7)[0]
    assert mask.numpy().tolist() == b.mask(4, 7).tolist()


def test_instance_crops_are_the_fusion_networks_crops() -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    ds = InstanceCrops([image, image], [_boxes([[3.5, 2, 20, 17.5]]), Boxes.empty()], 8)
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255
    assert len(ds) == 1
    assert torch.equal(ds[0]["image"], crop_instances(x, torch.tensor([[3.5, 2, 20, 17.5]]), 8)[0])
    with pytest.raises(DataError, match="no object boxes"):
        InstanceCrops([image], [Boxes.empty()], 8)


# -- configs and stages on a tiny generated data set --------------------------------------------------------


def _dataset(root: Path, n: int = 8) -> Path:
    """Photos of a coloured object on a coloured background, with YOLO boxes (images/, labels/)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 48, 64
        image = np.empty((h, w, 3), np.uint8)
        image[:] = (rng.random(3) * 255).astype(np.uint8)
        x0, y0 = int(rng.integers(0, 24)), int(rng.integers(0, 16))
        bw, bh = int(rng.integers(16, 40)), int(rng.integers(14, 32))
        image[y0 : y0 + bh, x0 : x0 + bw] = (rng.random(3) * 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"p{i}.jpg"), image)
        line = f"{i % 3} {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
        (root / "labels" / f"p{i}.txt").write_text(line)
    return root


def _cfg(root: Path, out: Path, stage: str, **model: Any) -> Any:
    raw = {
        "task": "instance_colorization",
        "name": stage,
        "output_dir": str(out),
        "data": {
            "root": str(root),
            "resize": 40,
            "crop": 32,
            "eval_size": 32,
            "batch_size": 2,
            "samples_per_epoch": 4,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "hints": {"rate": 0.5},
        },
        "model": {
            "width": 0.125,
            "stage": stage,
            "crop_size": 16,
            "infer_size": 32,
            "prior": "reference",
            **model,
        },
        "trainer": {"max_epochs": 1, "progress": "none"},
    }
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The three stages trained one epoch each, each initialised from the one before."""
    tmp = tmp_path_factory.mktemp("instance")
    root = _dataset(tmp / "data")
    out: dict[str, Any] = {"root": root, "tmp": tmp}
    full = tmp / "full"
    out["full"] = train(_cfg(root, tmp, "full"), run_dir=full, verbose=False)
    instance = tmp / "instance"
    out["instance"] = train(_cfg(root, tmp, "instance", init=str(full)), run_dir=instance, verbose=False)
    fusion_cfg = _cfg(root, tmp, "fusion", init=str(full), instance_init=str(instance))
    out["fusion"] = train(fusion_cfg, run_dir=tmp / "fusion", verbose=False)
    return out


def _net_state(run: Path, prefix: str = "net.") -> dict[str, torch.Tensor]:
    state = read_checkpoint(RunDir(run).checkpoint("best"))["state_dict"]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def test_stages_train_and_start_from_each_other(runs: dict[str, Any]) -> None:
    tmp = runs["tmp"]
    for stage in ("full", "instance", "fusion"):
        assert 0 <= runs[stage]["test/auc_rebalanced"] <= 1
    assert {"val/auc_rebalanced_boxes", "test/auc_raw_boxes", "test/psnr_boxes"} <= set(runs["fusion"])
    # Each stage's initial weights are the previous stage's best checkpoint.
    cfg = _cfg(runs["root"], tmp, "fusion", init=str(tmp / "full"), instance_init=str(tmp / "instance"))
    task = InstanceColorizationTask(cfg)
    task.load_initial_weights()
    for part, run in (("full", "full"), ("instance", "instance")):
        mine = getattr(task.net, part).state_dict()
        theirs = _net_state(tmp / run)
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    # The fusion stage trained the full network and the fusion modules, never the frozen instance network
    # (parameters and batch-norm statistics).
    fused = _net_state(tmp / "fusion", "net.instance.")
    instance = _net_state(tmp / "instance")
    assert all(torch.equal(fused[k], instance[k]) for k in instance)
    assert not all(
        torch.equal(v, _net_state(tmp / "full")[k])
        for k, v in _net_state(tmp / "fusion", "net.full.").items()
    )


def test_every_stage_tests_on_the_same_photos(runs: dict[str, Any]) -> None:
    root, tmp = runs["root"], runs["tmp"]
    colorization = config_from_dict(
        {
            "task": "colorization",
            "data": {"kind": "folder", "root": str(root), "val_fraction": 0.2, "test_fraction": 0.2},
        }
    )
    expected = ColorizationDataModule(colorization).resolve_splits()  # type: ignore[arg-type]
    for stage in ("full", "instance", "fusion"):
        assert InstanceDataModule(_cfg(root, tmp, stage)).resolve_splits() == expected


def test_fusion_run_is_an_instance_colorizer_and_exports(runs: dict[str, Any]) -> None:
    run = runs["tmp"] / "fusion"
    colorizer, info = load_colorizer(run)
    assert isinstance(colorizer, InstanceColorizer) and info["config"]["model"]["stage"] == "fusion"
    assert type(load_colorizer(runs["tmp"] / "instance")[0]) is Colorizer
    path = export_colorizer(run, runs["tmp"] / "fusion.pt", evaluate=True)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["test_metrics"]["boxes"]["n_images"] >= 1  # scored inside the boxes of its test photos
    exported, _ = load_colorizer_file(path)
    assert isinstance(exported, InstanceColorizer)
    # The file holds float16 weights (batch-norm statistics float32): the run's network rounded alike
    # predicts exactly the same.
    rounded = {k: _compact(k, v).to(v.dtype) for k, v in colorizer.net.state_dict().items()}
    colorizer.net.load_state_dict(rounded)
    lightness = torch.rand(1, 1, 45, 61, generator=torch.Generator().manual_seed(3)) * 100
    boxes = torch.tensor([[4.0, 6.0, 40.0, 44.0]])
    with torch.no_grad():
        assert torch.equal(
            exported.predict_ab(lightness, boxes=boxes), colorizer.predict_ab(lightness, boxes=boxes)
        )
        assert torch.equal(exported.predict_ab(lightness), colorizer.predict_ab(lightness))
    # Its full-image network initialises another stage from the exported file too.
    assert siggraph_weights(path, "full").keys() == colorizer.net.full.state_dict().keys()


def test_fusion_run_evaluates_on_a_folder(runs: dict[str, Any]) -> None:
    from tinct.engine import evaluate

    metrics = evaluate(runs["tmp"] / "fusion", data=runs["root"], out=runs["tmp"] / "eval.json")
    assert 0 <= metrics["test/auc_rebalanced_boxes"] <= 1 and metrics["test/psnr_boxes"] > 0


def test_config_checks(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data", n=2)
    with pytest.raises(ConfigError, match="siggraph17"):
        _cfg(root, tmp_path, "full", arch="eccv16")
    with pytest.raises(ConfigError, match="instance_init"):
        _cfg(root, tmp_path, "instance", instance_init="runs/x")
    with pytest.raises(ConfigError, match="crop_size"):
        _cfg(root, tmp_path, "instance", crop_size=20)
    with pytest.raises(ConfigError, match=r"data\.boxes"):
        config_from_dict(
            {"task": "instance_colorization", "data": {"root": [str(root), str(root)], "boxes": ["a"]}}
        )


def test_missing_init_fails_at_train_time_not_when_parsed(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data", n=2)
    cfg = _cfg(root, tmp_path, "full", init=str(tmp_path / "not-yet.pt"))  # parses
    with pytest.raises(RunDirError, match=r"not-yet\.pt: model\.init not found"):
        train(cfg, run_dir=tmp_path / "run", verbose=False)


def test_instance_stage_needs_boxes(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data", n=2)
    for label in (root / "labels").iterdir():
        label.write_text("")
    with pytest.raises(DataError, match="has a box"):
        InstanceDataModule(_cfg(root, tmp_path, "instance")).setup("fit")
    bare = tmp_path / "bare"
    bare.mkdir()
    cv2.imwrite(str(bare / "a.jpg"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(DataError, match="no object boxes"):
        InstanceDataModule(_cfg(bare, tmp_path, "fusion")).setup("fit")


def test_fusion_step_scores_the_pixels_inside_the_boxes(tmp_path: Path) -> None:
    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.colorization.metrics import psnr

    torch.manual_seed(0)
    task = InstanceColorizationTask(_cfg(tmp_path, tmp_path, "fusion")).eval()
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    boxes = [torch.tensor([[8.0, 8.0, 24.0, 16.0]]), torch.zeros(0, 4)]
    with torch.no_grad():
        out = task.step({"image": rgb, "boxes": boxes})
    mask = torch.zeros(2, 32, 32)
    mask[0, 8:16, 8:24] = 1  # the pixels whose centre is inside the box
    assert torch.equal(out["box_mask"], mask)
    pred = lab_to_rgb(torch.cat([rgb_to_lab(rgb)[:, :1], out["output"]], 1), clip=True)
    expected = psnr(pred[:1, :, 8:16, 8:24], rgb[:1, :, 8:16, 8:24])
    assert out["image_psnr_boxes"].shape == (1,) and torch.allclose(
        out["image_psnr_boxes"], expected, atol=1e-4
    )
