"""The patch-colour task: loss gradients, camera vocabulary, reports, evaluation on a folder, bad data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tinct.core.exceptions import DataError
from tinct.engine import train
from tinct.engine.config import config_from_dict
from tinct.engine.evaluate import evaluate
from tinct.patch.synth import synthesize_patches
from tinct.patch.task import PatchTask

TINY = {
    "task": "patch",
    "data": {"kind": "folder", "crop": "labels", "size": 32, "batch_size": 4, "context": 4},
    "model": {"width": 4, "depth": 2, "hidden": 16, "mean_features": True},
    "trainer": {"max_epochs": 1, "progress": "none", "limit_train_batches": 2},
}


@pytest.fixture(scope="module")
def patches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_patches(
        tmp_path_factory.mktemp("p") / "set", 24, size=(96, 72), photos_per_shade=2, progress=False
    )


def _cfg(root: Path, tmp_path: Path, **model: object) -> object:
    raw = json.loads(json.dumps(TINY))
    raw["data"]["root"] = str(root)
    raw["model"].update(model)
    raw["output_dir"] = str(tmp_path)
    return config_from_dict(raw)


def test_loss_gradients_are_finite_at_prediction_equal_target(patches: Path, tmp_path: Path) -> None:
    task = PatchTask(_cfg(patches, tmp_path, fusion="cross_attention"))
    target = torch.tensor([[62.0, 11.0, 16.0]]).repeat(4, 1)
    task.net.lab_mean.copy_(target[0])  # the head starts at zero: the prediction equals lab_mean exactly
    batch = {
        "image": torch.rand(4, 3, 32, 32), "lab": target, "meta": torch.randn(4, 4),
        "meta_mask": torch.ones(4, 4, dtype=torch.bool), "camera": torch.tensor([1, 2, 0, 3]),
        "stats": torch.rand(4, 12), "index": torch.arange(4),
    }  # fmt: skip
    task.eval()
    out = task.step(batch)
    assert out["errors"].abs().max() == 0
    out["loss"].backward()
    grads = [p.grad for p in task.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_camera_vocabulary_is_the_training_split(patches: Path, tmp_path: Path) -> None:
    cfg = _cfg(patches, tmp_path)
    task = PatchTask(cfg)
    table = task.build_datamodule().data.table
    assert task.cfg.model.cameras == sorted(table["camera"].unique())
    # Whole cameras held out: the test camera has no embedding row (it is "unknown", id 0).
    held = sorted(table["camera"].unique())[0]
    cfg2 = config_from_dict(
        {**cfg.model_dump(mode="json"), "data": {**cfg.data.model_dump(mode="json"), "split": "camera",
                                                  "test_cameras": [held]}}
    )  # fmt: skip
    task2 = PatchTask(cfg2)
    assert held not in task2.cfg.model.cameras
    dm = task2.build_datamodule()
    dm.setup("test")
    assert {int(dm.test_set[i]["camera"]) for i in range(len(dm.test_set))} == {0}


def test_train_writes_the_patch_report_and_evaluate_on_a_folder(patches: Path, tmp_path: Path) -> None:
    metrics = train(_cfg(patches, tmp_path, fusion="film"), run_dir=tmp_path / "run", verbose=False)
    run = tmp_path / "run"
    for key in ("val/de00_mean", "val/de00_median", "val/de00_p90", "val/share_below_1", "test/de00_mean"):
        assert np.isfinite(metrics[key])
    report = json.loads((run / "patch_metrics.json").read_text())
    assert report["n"] > 0 and set(report) >= {"de00_mean", "de00_median", "de00_p90", "share_below_1"}
    assert report["de00_mean"] == pytest.approx(metrics["test/de00_mean"], rel=1e-4)
    assert set(report["per_camera"]) and set(report["per_exposure"])
    assert (run / "figures" / "patch_swatches.png").is_file()
    table = pd.read_csv(run / "patch_predictions.csv")
    assert {"image", "camera", "exposure_bin", "pred_L", "de00"} <= set(table.columns)
    # the config records the camera vocabulary, so the run rebuilds without reading the data
    assert "cameras" in (run / "config.yaml").read_text()
    other = synthesize_patches(tmp_path / "other", 6, size=(96, 72), seed=9, progress=False)
    result = evaluate(run, data=other)
    folder = run / "eval-other"
    report = json.loads((folder / "patch_metrics.json").read_text())
    assert report["n"] == 6 and report["de00_mean"] == pytest.approx(result["test/de00_mean"], rel=1e-4)


def test_bad_data_names_the_file(patches: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(patches, bad)
    table = pd.read_csv(bad / "labels.csv")
    table.loc[3, "L"] = np.nan
    table.to_csv(bad / "labels.csv", index=False)
    with pytest.raises(DataError, match=r"labels\.csv.*patch_00003\.jpg|patch_00003\.jpg.*labels\.csv"):
        train(_cfg(bad, tmp_path), run_dir=tmp_path / "r1", verbose=False)
    table.loc[3, "L"] = 50.0
    table.drop(columns=["b"]).to_csv(bad / "labels.csv", index=False)
    with pytest.raises(DataError, match="b"):
        train(_cfg(bad, tmp_path), run_dir=tmp_path / "r2", verbose=False)
    table.to_csv(bad / "labels.csv", index=False)
    (bad / "patch_00005.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"patch_00005\.jpg"):
        train(_cfg(bad, tmp_path), run_dir=tmp_path / "r3", verbose=False)
