"""Every shipped config loads and trains with a tiny budget (lightning-hydra-template's rule)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tinct.engine import load_config, train

ALL_YAML = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))
CONFIGS = [p for p in ALL_YAML if not p.name.endswith(".sweep.yaml")]
SWEEPS = [p for p in ALL_YAML if p.name.endswith(".sweep.yaml")]
TINY = [
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.progress=none",
    "data.num_workers=0",
]
TINY_DATA = {
    "illuminant": ["data.n_train=16", "data.n_val=8", "data.n_test=8", "data.size=32", "data.batch_size=8"],
    "colorization": [
        "data.resize=48", "data.crop=32", "data.eval_size=40", "data.samples_per_epoch=8", "data.batch_size=4",
        "model.infer_size=48", "model.init=null",  # fine-tuning recipes start from runs made before
    ],
    "patch": [
        "data.synth_n=16", "data.synth_size=[96, 72]", "data.photos_per_shade=2", "data.size=32",
        "data.batch_size=4", "model.width=4", "model.depth=2", "model.hidden=16",
    ],
}  # fmt: skip
TINY_DATA["illuminant_embedding"] = TINY_DATA["illuminant"]
# Transfer recipes start from the shipped colorizer at width 0.25: here a random encoder at width 0.125.
TINY_DATA["classification"] = [
    "data.resize=40", "data.crop=32", "data.eval_size=32", "data.batch_size=4", "model.width=0.125",
    "model.init=null",
]  # fmt: skip
# The stages start from each other's runs and the shipped SIGGRAPH17 weights: here from random weights.
TINY_DATA["instance_colorization"] = [
    *TINY_DATA["colorization"], "data.batch_size=2", "model.crop_size=16", "model.instance_init=null",
]  # fmt: skip


def _photo_folder(folder: Path) -> Path:
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        image = (rng.random((8, 10, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i}.png"), cv2.resize(image, (60, 50), interpolation=cv2.INTER_LINEAR))
    return folder


def _boxed_photo_folder(folder: Path) -> Path:
    """A dataset folder with YOLO boxes: images/<i>.png and labels/<i>.txt."""
    folder.mkdir()
    _photo_folder(folder / "images")
    (folder / "labels").mkdir()
    for i in range(6):
        (folder / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.6 0.7\n")
    return folder


def test_there_are_configs() -> None:
    assert CONFIGS


def _tiny(raw: dict, tmp_path: Path) -> list[str]:
    """Overrides that make a config of ``raw``'s task train in seconds (and data folders it needs)."""
    data = raw.get("data") or {}
    overrides = [*TINY, *TINY_DATA[raw["task"]], f"output_dir={tmp_path}"]
    if raw["task"] == "classification":  # photos in class folders, grouped as the config's groups name them
        classes = [c for members in (data.get("groups") or {"all": ["a", "b"]}).values() for c in members]
        for name in classes:
            _photo_folder(tmp_path / "classes" / name)
        overrides.append(f"data.root={tmp_path / 'classes'}")
    elif raw["task"] == "instance_colorization":
        overrides.append(f"data.root={_boxed_photo_folder(tmp_path / 'boxed')}")
    elif raw["task"] == "colorization" and data.get("kind") == "folder":
        overrides.append(f"data.root={_photo_folder(tmp_path / 'photos')}")
    elif data.get("kind") == "folder":  # the user names the folder; the test makes one
        folder = tmp_path / "data"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(10):
            np.save(folder / f"{i}.npy", rng.random((40, 40, 3), dtype=np.float32))
        pd.DataFrame({"image": [f"{i}.npy" for i in range(10)], "r": 0.5, "g": 1.0, "b": 0.7}).to_csv(
            folder / "gt.csv", index=False
        )
        overrides.append(f"data.root={folder}")
    if (
        data.get("kind") == "synthetic" and raw["task"] != "patch"
    ):  # generated on first use: a few small images
        overrides += ["data.synth_n=8", "data.synth_size=[48, 32]"]
    return overrides


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_trains_tiny(path: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path, _tiny(raw, tmp_path))
    m = train(cfg, verbose=False)
    assert m and all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    from tinct.engine.task import TASKS

    cls = TASKS.get(cfg.task)
    assert np.isfinite(m[cls.monitor.replace("val/", "test/")])
    # the task logs its monitor and every column of its report table
    assert cls.monitor in m
    for column in cls.report_table.columns if cls.report_table else ():
        assert {f"val/{column.metric}", f"test/{column.metric}"} <= set(m), column


def test_every_task_ships_a_config() -> None:
    from importlib.metadata import entry_points

    tasks = {yaml.safe_load(p.read_text())["task"] for p in CONFIGS}
    assert {ep.name for ep in entry_points(group="tinct.tasks")} <= tasks


def test_every_task_ships_a_sweep_file() -> None:
    tasks = {yaml.safe_load(p.read_text())["task"] for p in CONFIGS}
    swept = set()
    for path in SWEEPS:
        spec = yaml.safe_load(path.read_text())
        swept.add(yaml.safe_load((path.parent / spec["base"]).read_text())["task"])
        if "pretrain" in spec:
            swept.add(yaml.safe_load((path.parent / spec["pretrain"]["config"]).read_text())["task"])
    assert tasks <= swept


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_sweep_runs_tiny(path: Path, tmp_path: Path) -> None:
    """Every point of every shipped sweep (the optional ones skipped) trains with a tiny budget."""
    from tinct.core.config import parse_overrides
    from tinct.engine.sweep import run_sweep

    spec = yaml.safe_load(path.read_text())
    raw = yaml.safe_load((path.parent / spec["base"]).read_text())
    overrides = parse_overrides(_tiny(raw, tmp_path))
    results = run_sweep(path, tmp_path / "sweep", overrides=overrides, only_full=True, progress=False)
    assert not results.empty
    assert set(results["state"]) <= {"COMPLETE", "WAITING"}
    assert (results["state"] == "COMPLETE").sum() == (~results["optional"]).sum()
