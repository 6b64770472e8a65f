"""``tinct study instance`` end to end on a tiny generated set with boxes: the stages and the same-budget
baseline train, every model is scored on the whole photo and inside the boxes, the margins are per photo,
and a rerun resumes without training again."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from tinct.cli.main import main
from tinct.colorization.instance_study import _margins, study_instance
from tinct.colorization.pretrained import FORMAT
from tinct.colorization.siggraph import SIGGRAPHNet
from tinct.colorization.task import ColorizationConfig
from tinct.core.exceptions import ConfigError

TINY = [
    "data.resize=40", "data.crop=32", "data.eval_size=32", "data.batch_size=2", "data.samples_per_epoch=4",
    "data.val_fraction=0.25", "data.test_fraction=0.25", "model.width=0.125", "model.crop_size=16",
    "model.infer_size=32", "trainer.check_val_every_n_epoch=1", "trainer.precision=32-true",
    "trainer.progress=none",
]  # fmt: skip


def _dataset(root: Path, n: int = 10) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 48, 64
        image = np.empty((h, w, 3), np.uint8)
        image[:] = (rng.random(3) * 255).astype(np.uint8)
        x0, y0, bw, bh = int(rng.integers(0, 24)), int(rng.integers(0, 16)), 30, 24
        image[y0 : y0 + bh, x0 : x0 + bw] = (rng.random(3) * 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"p{i}.png"), image)
        (root / "labels" / f"p{i}.txt").write_text(
            f"0 {(x0 + bw / 2) / w:.6f} {(y0 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
        )
    return root


def _init(path: Path) -> Path:
    """A randomly initialised SIGGRAPH17 colorizer file of width 0.125 (what stage 1 starts from)."""
    torch.manual_seed(0)
    cfg = ColorizationConfig.model_validate(
        {"task": "colorization", "model": {"arch": "siggraph17", "head": "regression", "width": 0.125}}
    )
    torch.save(
        {
            "format": FORMAT,
            "config": cfg.model_dump(mode="json"),
            "state_dict": SIGGRAPHNet(0.125).state_dict(),
        },
        path,
    )
    return path


def test_study_instance_end_to_end(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "data")
    init = _init(tmp_path / "init.pt")
    out = tmp_path / "study"
    table = study_instance(
        out, data=data, init=init, epochs=(1, 1, 1), overrides=TINY, progress=False, examples=2
    )
    models = set(table["Model"])
    assert {"instance-aware fusion", "full image, same budget as fused", "grayscale (ab = 0)"} <= models
    assert set(table["Region"]) == {"whole", "boxes"}
    # The same-budget baseline trained for the epochs of stages 1 + 3.
    assert json.loads((out / "full_same_budget" / "metrics.json").read_text())["epochs"] == 2
    doc = json.loads((out / "study.json").read_text())
    fused = doc["test"]["fusion"]
    assert fused["boxes"]["n_images"] >= 1 and fused["per_image"]
    assert doc["margins"]["n_photos"] == len([p for p in fused["per_image"] if p.get("boxes")])
    for name in ("study.md", "study.csv", "figures/metrics.png", "figures/examples.png"):
        assert (out / name).is_file(), name
    assert "Inside the boxes" in (out / "study.md").read_text()
    # A rerun resumes: nothing is retrained, the table is the same.
    stamp = (out / "fusion" / "metrics.json").stat().st_mtime_ns
    again = study_instance(
        out, data=data, init=init, epochs=(1, 1, 1), overrides=TINY, progress=False, examples=0
    )
    assert (out / "fusion" / "metrics.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(table, again)


def test_margins_are_per_photo_differences() -> None:
    def photo(name: str, psnr: float, auc: float, boxes: bool = True) -> dict:
        m = {"psnr": psnr, "auc_rebalanced": auc, "ssim": 0.5}  # the layout of per_image entries
        return {"image": name, "whole": m, **({"boxes": m} if boxes else {})}

    fused = {"per_image": [photo("a", 21.0, 0.70), photo("b", 20.0, 0.60), photo("c", 19.0, 0.5, False)]}
    full = {"per_image": [photo("a", 20.0, 0.65), photo("b", 20.5, 0.60), photo("c", 1.0, 0.1, False)]}
    m = _margins(fused, full, 0)
    assert m["n_photos"] == 2  # only photos with boxes
    assert m["psnr_boxes"]["mean"] == pytest.approx(0.25) and m["psnr_boxes"]["improved"] == 0.5
    assert m["auc_rebalanced_boxes"]["mean"] == pytest.approx(2.5)  # points
    lo, hi = m["psnr_boxes"]["ci95"]
    assert lo <= 0.25 <= hi


def test_study_instance_refuses_bad_epochs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="three positive"):
        study_instance(tmp_path, epochs=(1, 0, 1), progress=False)
    assert main(["study", "instance", "--out", str(tmp_path / "s"), "--epochs", "1", "2", "0"]) == 2
