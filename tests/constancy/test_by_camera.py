"""Colour constancy across cameras: the ``cameras`` layout, the split by camera (no camera both trained and
tested on), leave-one-camera-out and per-camera k-fold cross-validation, and ``tinct crossval --by-camera``."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tinct.constancy.by_camera import camera_table, crossval_cameras
from tinct.constancy.crossval import ERROR_COLUMNS, crossval, fold_config, mean_over, read_errors
from tinct.constancy.layouts import (
    camera_ids,
    check_camera_split,
    convert_constancy,
    detect_layout,
    fold_ids,
    open_constancy,
)
from tinct.core.exceptions import ConfigError, DataError, TinctError
from tinct.engine import experiments
from tinct.engine.config import config_from_dict
from tinct.engine.task import TASKS

CAMERAS = ("CamA", "CamB", "CamC")
PER_CAMERA = 6
# the tiny budget of tests/constancy/test_crossval.py
TINY = {
    "task": "illuminant",
    "name": "cam-tiny",
    "seed": 0,
    "data": {"size": 16, "batch_size": 8, "augment": {"enabled": False}},
    "model": {"backbone": "small_cnn", "width": 4, "depth": 2, "hidden": 8},
    "optim": {"lr": 0.01},
    "trainer": {"max_epochs": 1, "progress": "none"},
}


def make_cameras(
    root: Path, cameras: tuple[str, ...] = CAMERAS, n: int = PER_CAMERA, dtype=np.float16
) -> Path:
    """One generic folder per camera: ``n`` tiny linear scenes, gt.csv and a 2-fold folds.csv.

    File names repeat across cameras (``img00.npy`` in each), as they may in real data.
    """
    for c, camera in enumerate(cameras):
        rng = np.random.default_rng(c)
        d = root / camera
        d.mkdir(parents=True)
        rows = []
        for i in range(n):
            illum = rng.uniform(0.3, 1.0, 3)
            patches = rng.uniform(0.05, 0.9, (4, 4, 3)).repeat(4, 0).repeat(4, 1)
            np.save(d / f"img{i:02d}.npy", (patches * illum).astype(dtype))
            rows.append({"image": f"img{i:02d}.npy", "r": illum[0], "g": illum[1], "b": illum[2]})
        pd.DataFrame(rows).to_csv(d / "gt.csv", index=False)
        folds = [(i + c) % 2 for i in range(n)]
        pd.DataFrame({"image": [r["image"] for r in rows], "fold": folds}).to_csv(
            d / "folds.csv", index=False
        )
    return root


def _cfg(tmp: Path, data: Path, fold: int | None = None, folds: int = 3, **data_kw):
    cfg = config_from_dict({**TINY, "output_dir": str(tmp / "runs")})
    if fold is None:
        return cfg
    return fold_config(cfg, data, fold, folds, {"data.split_by": "camera", **data_kw})


def test_open_detects_cameras_with_a_camera_column(tmp_path: Path) -> None:
    root = make_cameras(tmp_path / "cams")
    assert detect_layout(root) == "cameras"
    src = open_constancy(root)
    assert src.layout == "cameras" and len(src) == 3 * PER_CAMERA
    assert src.cameras == list(CAMERAS)
    assert (src.black_level, src.saturation) == (None, None)  # float arrays: black 0, saturation 1.0
    t = src.table
    assert t["image"].is_unique and t["image"].iloc[0] == "CamA/img00.npy"
    assert t["camera"].tolist() == [c for c in CAMERAS for _ in range(PER_CAMERA)]
    assert all(Path(p).parent.name == c for p, c in zip(t["path"], t["camera"], strict=True))
    # each camera's own folds.csv
    np.testing.assert_array_equal(t["fold"][t["camera"] == "CamB"], [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(camera_ids(src), np.repeat([0, 1, 2], PER_CAMERA))
    assert sorted(np.bincount(fold_ids(src)).tolist()) == [9, 9]
    image, _ = src.load(PER_CAMERA)
    assert image.shape == (3, 16, 16)
    # single-folder layouts have an empty camera column
    single = open_constancy(root / "CamA")
    assert set(single.table["camera"]) == {""} and single.cameras == []
    with pytest.raises(DataError, match="at least 2 camera folders"):
        camera_ids(single)


def test_integer_npy_in_a_camera_folder_is_refused(tmp_path: Path) -> None:
    root = make_cameras(tmp_path / "cams")
    np.save(root / "CamB" / "img03.npy", np.full((16, 16, 3), 1000, dtype=np.uint16))
    with pytest.raises(DataError, match=r"CamB/img03\.npy: uint16 \.npy"):
        open_constancy(root)


def test_mixed_layouts_and_stray_folders_are_refused(tmp_path: Path) -> None:
    import cv2

    root = make_cameras(tmp_path / "cams", cameras=("CamA", "CamB"))
    tau = root / "CamC"
    tau.mkdir()
    assert cv2.imwrite(str(tau / "x0.png"), np.full((6, 6, 3), 300, dtype=np.uint16))
    (tau / "x0_metadata.json").write_text(json.dumps({"illuminant_color_raw": [1, 3, 2]}))
    with pytest.raises(
        DataError, match=r"different layouts \(CamA: generic, CamB: generic, CamC: intel_tau\)"
    ):
        open_constancy(root)
    (tau / "x0.png").unlink()
    (tau / "x0_metadata.json").unlink()
    with pytest.raises(DataError, match="not a dataset: CamC"):
        detect_layout(root)
    tau.rmdir()
    (root / ".cache").mkdir()  # hidden folders are not cameras
    assert open_constancy(root).cameras == ["CamA", "CamB"]


def test_convert_keeps_one_folder_per_camera(tmp_path: Path) -> None:
    out = convert_constancy(make_cameras(tmp_path / "cams"), tmp_path / "out", size=4, progress=False)
    src = open_constancy(out)
    assert src.layout == "cameras" and src.cameras == list(CAMERAS) and len(src) == 3 * PER_CAMERA
    assert np.load(out / "CamA" / "img00.npy").shape == (4, 4, 3)


@pytest.mark.parametrize("val_fraction", [0.25, 0.0])
def test_split_by_camera_holds_out_exactly_one_camera(tmp_path: Path, val_fraction: float) -> None:
    data = make_cameras(tmp_path / "cams")
    cameras = np.asarray(open_constancy(data).table["camera"])
    for k, held in enumerate(CAMERAS):
        cfg = _cfg(tmp_path, data, k, **{"data.val_fraction": val_fraction})
        dm = TASKS.get("illuminant")(cfg).build_datamodule()
        dm.setup("fit")
        split = {s: set(cameras[rows]) for s, rows in dm.split_indices.items()}
        assert split["test"] == {held}
        assert split["train"] == set(CAMERAS) - {held}
        assert not split["train"] & split["test"]
        if val_fraction > 0:
            assert split["val"] and not split["val"] & split["test"]
            assert set(dm.split_indices["val"]).isdisjoint(dm.split_indices["train"])
        else:  # the held-out camera draws the curves only
            assert dm.split_indices["val"] == dm.split_indices["test"]
        rows = dm.split_indices["train"] + dm.split_indices["test"]
        if val_fraction > 0:
            rows += dm.split_indices["val"]
        assert sorted(rows) == list(range(len(cameras)))


def test_fold_count_other_than_the_cameras_is_refused(tmp_path: Path) -> None:
    data = make_cameras(tmp_path / "cams")
    dm = TASKS.get("illuminant")(_cfg(tmp_path, data, 0, folds=2)).build_datamodule()
    with pytest.raises(ConfigError, match=r"one fold per camera, 3 here \(CamA, CamB, CamC\)"):
        dm.setup("fit")
    with pytest.raises(ConfigError, match="CamA, CamB, CamC"):
        crossval(_cfg(tmp_path, data), data, folds=2, out=tmp_path / "cv", by_camera=True)
    with pytest.raises(ValueError, match=r"split_by 'camera' needs data\.kind 'folder'"):
        config_from_dict({**TINY, "data": {**TINY["data"], "split_by": "camera"}})


def test_check_camera_split_names_the_leak(tmp_path: Path) -> None:
    src = open_constancy(make_cameras(tmp_path / "cams"))
    check_camera_split(src, [0, 1], train=[6, 12])
    with pytest.raises(TinctError, match=r"CamA in both the val and the test set \(\{'CamA': 1\} val"):
        check_camera_split(src, [0, 1], train=[6], val=[2, 7])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """Leave-one-camera-out and per-camera 2-fold cross-validation of the tiny config, run once: 3 + 6
    one-epoch trainings on 16 x 16 images."""
    tmp = tmp_path_factory.mktemp("cams")
    data = make_cameras(tmp / "data")
    cfg = _cfg(tmp, data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            importlib.import_module("tinct.engine.train"), "plot_learning_curves", lambda *a, **k: None
        )
        res = crossval_cameras(
            cfg, data, tmp / "cv", by_camera=True, per_camera=True, progress=False, figures=False
        )
    return tmp, data, cfg, res


def test_by_camera_one_unit_per_camera(finished) -> None:
    _, _, _, res = finished
    out, by = res.out, res.by_camera
    assert by is not None and by["split_by"] == "camera" and by["folds"] == 3
    assert by["cameras"] == list(CAMERAS) and set(by["per_camera"]) == set(CAMERAS)
    pooled = read_errors(out / "cv_errors.csv")
    assert list(pooled.columns) == ["image", "camera", *ERROR_COLUMNS[1:]]
    assert len(pooled) == by["n"] == 3 * PER_CAMERA and pooled["image"].is_unique
    for k, camera in enumerate(CAMERAS):
        errors = read_errors(out / f"camera-{camera}" / "errors.csv")
        assert set(errors["camera"]) == {camera} and (errors["fold"] == k).all()
        assert errors["image"].str.startswith(f"{camera}/").all()
        entry = by["per_camera"][camera]
        assert entry["n"] == PER_CAMERA and entry["n_train"] == 2 * PER_CAMERA
        assert entry["mean"] == pytest.approx(errors["error"].mean())
        info = json.loads((out / f"camera-{camera}" / "heldout.json").read_text())
        assert info["n_heldout"] == PER_CAMERA
    assert by["mean_over_cameras"]["mean"] == pytest.approx(
        np.mean([by["per_camera"][c]["mean"] for c in CAMERAS])
    )
    assert json.loads((out / "cv_metrics.json").read_text()) == json.loads(json.dumps(by))


def test_training_never_sees_the_held_out_camera(finished) -> None:
    _, data, cfg, res = finished
    for k, camera in enumerate(CAMERAS):
        fc = fold_config(cfg, data, k, 3, {"data.split_by": "camera"})
        dm = TASKS.get("illuminant")(fc).build_datamodule()
        dm.setup("fit")
        seen = set()
        for batch in dm.train_dataloader():
            seen |= set(batch["index"].tolist())
        held = set(read_errors(res.out / f"camera-{camera}" / "errors.csv")["image"])
        names = set(open_constancy(data).table["image"].iloc[sorted(seen)])
        assert seen and not names & held


def test_per_camera_runs_k_fold_within_each_camera(finished) -> None:
    _, data, _, res = finished
    per = res.per_camera
    assert per is not None and per["cameras"] == list(CAMERAS) and per["n"] == 3 * PER_CAMERA
    root = res.out / "per_camera"
    for camera in CAMERAS:
        metrics = json.loads((root / camera / "cv_metrics.json").read_text())
        assert metrics["folds"] == 2 and metrics["n"] == PER_CAMERA
        assert per["per_camera"][camera]["mean"] == metrics["mean"]
        pooled = read_errors(root / camera / "cv_errors.csv")
        assert "camera" not in pooled  # a single camera folder is a generic source
        folds = pd.read_csv(data / camera / "folds.csv").set_index("image")["fold"]
        assert (pooled["fold"].to_numpy() == folds.loc[pooled["image"]].to_numpy()).all()
    assert per["mean_over_cameras"] == mean_over(per["per_camera"].values())
    saved = pd.read_csv(root / "per_camera.csv")
    assert saved["camera"].tolist() == list(CAMERAS) and (saved["folds"] == 2).all()


def test_camera_table_side_by_side(finished) -> None:
    _, _, _, res = finished
    t = res.table
    assert t.columns.tolist() == [
        "Camera",
        "N",
        "By-camera mean",
        "By-camera median",
        "Per-camera mean",
        "Per-camera median",
    ]
    assert t["Camera"].tolist() == [*CAMERAS, "mean over cameras"]
    assert t["N"].tolist() == [PER_CAMERA] * 3 + [3 * PER_CAMERA]
    assert t["Per-camera mean"].iloc[-1] == pytest.approx(t["Per-camera mean"].iloc[:-1].mean())
    md = (res.out / "by_camera.md").read_text().splitlines()
    assert md[0] == "| Camera | N | By-camera mean | By-camera median | Per-camera mean | Per-camera median |"
    assert md[2].startswith(f"| CamA | {PER_CAMERA} | ")
    assert pd.read_csv(res.out / "by_camera.csv")["Camera"].tolist() == t["Camera"].tolist()
    only = camera_table(per_camera=res.per_camera)
    assert only.columns.tolist() == ["Camera", "N", "Per-camera mean", "Per-camera median"]


def test_cli_by_camera_and_per_camera_resume(finished, monkeypatch, capsys) -> None:
    from tinct.cli.main import main

    tmp, data, cfg, res = finished
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    monkeypatch.setattr(experiments, "train", lambda *a, **k: pytest.fail("a finished unit was trained"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the title and cells to the terminal
    args = [
        "crossval",
        str(config),
        "--data",
        str(data),
        "--out",
        str(res.out),
        "--by-camera",
        "--per-camera",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "leave one camera out vs k-fold per camera" in printed and "mean over cameras" in printed
    assert printed.count("done before") == 3 + 6
    for camera in CAMERAS:
        assert camera in printed
    assert main([*args[:-2], "--by-camera", "--folds", "2"]) == 2
    assert "one fold per camera" in capsys.readouterr().err


def test_real_nus8_split_by_camera(shared_data: Path, tmp_path: Path) -> None:
    """NUS-8 as shipped: 9 cameras, 1853 images; every held-out camera is unseen by training and validation."""
    root = shared_data / "constancy" / "nus8_64"
    src = open_constancy(root)
    assert src.layout == "cameras" and len(src) == 1853
    counts = src.table["camera"].value_counts().to_dict()
    assert counts == {
        "C1": 259, "Canon600D": 200, "Fuji": 196, "NikonD5200": 200, "NikonD40": 117,
        "Olympus": 208, "Panasonic": 203, "Samsung": 202, "Sony": 268,
    }  # fmt: skip
    assert src.has_folds and set(src.table["fold"]) == {0, 1, 2}
    cameras = src.table["camera"].to_numpy()
    for k, held in enumerate(src.cameras):
        cfg = fold_config(_cfg(tmp_path, root), root, k, 9, {"data.split_by": "camera"})
        dm = TASKS.get("illuminant")(cfg).build_datamodule()
        dm.setup("fit")
        test = set(cameras[dm.split_indices["test"]])
        assert test == {held} and len(dm.split_indices["test"]) == counts[held]
        for split in ("train", "val"):
            assert not set(cameras[dm.split_indices[split]]) & test, (held, split)
