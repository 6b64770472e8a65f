import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinct.constancy import crossval as cv_mod
from tinct.constancy.crossval import (
    ERROR_COLUMNS,
    crossval,
    fold_config,
    format_stats_table,
    heldout_errors,
    read_errors,
)
from tinct.engine import experiments, train
from tinct.engine.config import config_from_dict
from tinct.engine.experiments import ensure_trained
from tinct.engine.statistics import error_statistics

N_IMAGES = 12

TINY = {
    "task": "illuminant",
    "name": "cv-tiny",
    "seed": 0,
    "data": {"size": 16, "batch_size": 8, "augment": {"enabled": False}},
    "model": {"backbone": "small_cnn", "width": 4, "depth": 2, "hidden": 8},
    "optim": {"lr": 0.01},
    "trainer": {"max_epochs": 1, "progress": "none"},
}


def make_folder(root: Path, n: int = N_IMAGES, folds: list[int] | None = None) -> Path:
    """``n`` tiny linear scenes (random grey-world-ish patches times a random illuminant) + gt.csv."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        illum = rng.uniform(0.3, 1.0, 3)
        patches = rng.uniform(0.05, 0.9, (4, 4, 3)).repeat(4, 0).repeat(4, 1)
        np.save(root / f"img{i:02d}.npy", (patches * illum).astype(np.float32))
        rows.append({"image": f"img{i:02d}.npy", "r": illum[0], "g": illum[1], "b": illum[2]})
    pd.DataFrame(rows).to_csv(root / "gt.csv", index=False)
    if folds is not None:
        pd.DataFrame({"image": [r["image"] for r in rows], "fold": folds}).to_csv(
            root / "folds.csv", index=False
        )
    return root


@pytest.fixture
def cfg(tmp_path: Path):
    return config_from_dict({**TINY, "output_dir": str(tmp_path / "runs")})


FOLDS = [2, 0, 1, 1, 0, 2, 0, 2, 1, 0, 1, 2]  # folds.csv: 4 images per fold, not in file order


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """One 3-fold cross-validation (folds from folds.csv) shared by the read-only checks below.

    Fold 1 was killed after its first epoch (a checkpoint, no metrics.json, no errors) before the
    cross-validation ran, which must resume it instead of starting it over.
    """
    tmp = tmp_path_factory.mktemp("cv")
    data = make_folder(tmp / "data", folds=FOLDS)
    one = config_from_dict({**TINY, "output_dir": str(tmp / "runs")})
    train(fold_config(one, data, 1, 3), run_dir=tmp / "cv" / "fold1", verbose=False)
    (tmp / "cv" / "fold1" / "metrics.json").unlink()
    c = one.model_copy(deep=True)
    c.trainer.max_epochs = 2
    calls: list[tuple[str, bool]] = []

    def recording_train(cfg, *, run_dir, resume=False, **kw):
        calls.append((Path(run_dir).name, resume))
        return train(cfg, run_dir=run_dir, resume=resume, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiments, "train", recording_train)
        # each run's own learning-curve figure is train()'s business and costs a second per fold
        mp.setattr(
            importlib.import_module("tinct.engine.train"), "plot_learning_curves", lambda *a, **k: None
        )
        stats = crossval(c, data, out=tmp / "cv", progress=False)
    assert calls == [("fold0", False), ("fold1", True), ("fold2", False)]
    return c, data, tmp / "cv", stats


def test_every_image_held_out_exactly_once(finished) -> None:
    _, _, out, stats = finished
    pooled = read_errors(out / "cv_errors.csv")
    assert list(pooled.columns) == list(ERROR_COLUMNS)
    assert stats["n"] == len(pooled) == N_IMAGES
    assert sorted(pooled["image"]) == [f"img{i:02d}.npy" for i in range(N_IMAGES)]
    expected = dict(zip([f"img{i:02d}.npy" for i in range(N_IMAGES)], FOLDS, strict=True))
    assert all(expected[i] == f for i, f in zip(pooled["image"], pooled["fold"], strict=True))
    for k in range(3):
        per = read_errors(out / f"fold{k}" / "errors.csv")
        assert (per["fold"] == k).all()
    # the stored unit-norm illuminants are the gt.csv ones
    gt = pd.read_csv(Path(finished[1]) / "gt.csv").set_index("image")
    rgb = gt.loc[pooled["image"], ["r", "g", "b"]].to_numpy()
    rgb = rgb / np.linalg.norm(rgb, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled[["true_r", "true_g", "true_b"]].to_numpy(), rgb, atol=1e-6)


def test_training_never_sees_its_held_out_fold(finished) -> None:
    c, data, out, _ = finished
    from tinct.engine.task import TASKS

    for k in range(3):
        fc = fold_config(c, data, k, 3)
        dm = TASKS.get("illuminant")(fc).build_datamodule()
        dm.setup("fit")
        seen = set()
        for batch in dm.train_dataloader():
            seen |= set(batch["index"].tolist())
        held = set(read_errors(out / f"fold{k}" / "errors.csv")["image"].str[3:5].astype(int))
        val = set(dm.split_indices["val"])  # val_fraction of the training folds, never the held-out fold
        assert seen and not (seen & held) and not (val & held) and not (val & seen)
        assert seen | val | held == set(range(N_IMAGES))


def test_metrics_are_the_statistics_of_the_pooled_errors(finished) -> None:
    _, _, out, stats = finished
    saved = json.loads((out / "cv_metrics.json").read_text())
    pooled = read_errors(out / "cv_errors.csv")["error"].to_numpy()
    ref = error_statistics(pooled)
    for key in ("mean", "median", "trimean", "best25", "worst25"):
        assert saved[key] == pytest.approx(ref[key], rel=1e-12), key
        assert 0 <= saved[key] <= 180
    assert saved["folds"] == 3 and set(saved["per_fold"]) == {"0", "1", "2"}
    assert saved["epochs"] == 2 and saved["images_per_second"] > 0
    assert saved == json.loads(json.dumps(stats))
    for f in ("curves.png", "error_cdf.png"):
        assert (out / "figures" / f).stat().st_size > 1000


def test_errors_are_those_of_the_last_checkpoint(finished) -> None:
    _, _, out, _ = finished
    again = heldout_errors(out / "fold1", "last")
    saved = read_errors(out / "fold1" / "errors.csv")
    np.testing.assert_allclose(np.sort(again["error"]), np.sort(saved["error"]), rtol=1e-5)


def test_rerun_skips_finished_folds(finished, monkeypatch, capsys) -> None:
    c, data, out, stats = finished
    mtimes = [(out / f"fold{k}" / "errors.csv").stat().st_mtime_ns for k in range(3)]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(experiments, "train", no_training)
    again = crossval(c, data, folds=3, out=out, progress=True)
    assert [(out / f"fold{k}" / "errors.csv").stat().st_mtime_ns for k in range(3)] == mtimes
    assert again["mean"] == stats["mean"]
    assert capsys.readouterr().out.count("done before") == 3


def test_a_fold_with_images_without_estimate_is_named(finished, monkeypatch, tmp_path) -> None:
    import shutil

    from tinct.core.exceptions import TinctError

    c, data, out, _ = finished
    copy = tmp_path / "cv"
    shutil.copytree(out, copy)
    # fold 1's estimator returned a zero vector for one image: its angular error is NaN, never 0
    errors = read_errors(copy / "fold1" / "errors.csv")
    errors.loc[2, "error"] = np.nan
    (copy / "fold1" / "errors.csv").write_text(cv_mod._to_csv(errors))
    assert "nan" in (copy / "fold1" / "errors.csv").read_text()
    monkeypatch.setattr(experiments, "train", lambda *a, **k: pytest.fail("a finished fold was trained"))
    with pytest.raises(
        TinctError,
        match=rf"fold 1 .*: 1 of 4 held-out images have no illuminant estimate .*{errors.loc[2, 'image']}",
    ):
        crossval(c, data, folds=3, out=copy, progress=False)


def test_killed_fold_resumed_without_repeating_epochs(finished) -> None:
    _, _, out, stats = finished
    for k in range(3):
        assert pd.read_csv(out / f"fold{k}" / "metrics.csv")["epoch"].tolist() == [0, 1]
        assert stats["per_fold"][str(k)]["epochs"] == 2


def test_fold_count_other_than_folds_csv_gives_a_seeded_split(finished, monkeypatch, tmp_path) -> None:
    from tinct.constancy.layouts import fold_ids, open_constancy

    c, data, _, _ = finished
    seen = []
    monkeypatch.setattr(cv_mod, "_run_units", lambda units, *a: seen.extend(units) or {})
    crossval(c, data, folds=2, out=tmp_path / "x", progress=False)
    ids = fold_ids(open_constancy(data), 2, c.data.split_seed)
    assert [u.cfg.data.fold for u in seen] == [0, 1] and all(u.cfg.data.folds == 2 for u in seen)
    for u in seen:
        np.testing.assert_array_equal(u.expected, np.flatnonzero(ids == u.fold))
    assert not np.array_equal(ids, np.asarray(FOLDS) % 2)


def test_another_experiment_in_the_same_folder_is_refused(cfg, tmp_path: Path) -> None:
    from tinct.core.exceptions import ConfigError

    data = make_folder(tmp_path / "data")
    fc = fold_config(cfg, data, 0, 3)
    assert ensure_trained(fc, tmp_path / "r", quiet=True) == "trained"
    assert ensure_trained(fc, tmp_path / "r") == "done"
    other = fc.model_copy(deep=True)
    other.optim.lr = 0.5
    with pytest.raises(ConfigError, match="different optim"):
        ensure_trained(other, tmp_path / "r")


def test_format_stats_table() -> None:
    from rich.console import Console

    t = format_stats_table(
        {"a": {"mean": 1.234, "median": 1, "trimean": 1, "worst25": 2, "best25": 0.5, "epochs": 3}}
    )
    assert [c.header for c in t.columns] == [
        "Type",
        "Epochs",
        "Mean",
        "Median",
        "Trimean",
        "Worst25",
        "Best25",
    ]
    console = Console(width=120, record=True)
    console.print(t)
    assert "1.23" in console.export_text()
