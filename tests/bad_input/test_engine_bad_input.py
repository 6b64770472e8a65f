"""Bad-input matrix, runs, configs, sweeps and ``tinct predict`` (issue 16): names that would climb out of
their folder, invalid trainer settings, broken run folders and checkpoints, bad fold counts, and
prediction jobs with missing inputs or colliding file names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tinct.core.config import TrainerConfig
from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.engine import RunDir, evaluate, load_task, predict, train
from tinct.engine.config import config_from_dict, load_config
from tinct.engine.run_dir import new_run_path

REPO = Path(__file__).resolve().parents[2]
MONDRIAN = REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml"
TINY = {
    "task": "illuminant",
    "name": "tiny",
    "seed": 1,
    "data": {"kind": "mondrian", "n_train": 32, "n_val": 16, "n_test": 16, "size": 16, "batch_size": 16},
    "model": {"backbone": "small_cnn", "width": 4, "depth": 2, "hidden": 8},
    "trainer": {"max_epochs": 1, "progress": "none"},
}


def tiny(tmp_path: Path, **changes: object) -> dict:
    return {**TINY, "output_dir": str(tmp_path / "runs"), **changes}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny finished run (1 epoch), shared by the read-only checks below."""
    root = tmp_path_factory.mktemp("trained")
    cfg = config_from_dict(tiny(root))
    train(cfg, run_dir=root / "run", verbose=False, test=False)
    return root / "run"


def copy_run(run: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, to))


# -- names: nothing is written outside the chosen folder -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../escaped", "contains a path separator"),
        ("a/b", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        ("..", "starts with '.'"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("a\x00b", "control character"),
        ("line\nbreak", "control character"),
        (" padded", "starts or ends with a space"),
        ("x" * 201, "201 bytes long"),
    ],
)
def test_run_names_that_are_not_one_folder_name_are_refused(tmp_path, name, problem) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny(tmp_path, name=name)))
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid configuration\n  name: ") as info:
        load_config(path)
    assert problem in str(info.value) and "use letters, digits" in str(info.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["mondrian-small-cnn", "lr 0.1", "météo", "a.b_c+d=e,f@g", "x" * 200])
def test_ordinary_run_names_are_accepted(tmp_path, name) -> None:
    assert config_from_dict(tiny(tmp_path, name=name)).name == name


def test_a_name_set_around_validation_still_cannot_leave_output_dir(tmp_path) -> None:
    cfg = config_from_dict(tiny(tmp_path)).model_copy(update={"name": "../../escaped"})  # no validation
    with pytest.raises(ConfigError, match=r"run folder of name '\.\./\.\./escaped' .* is not inside"):
        new_run_path(cfg)
    with pytest.raises(ConfigError, match="is not inside"):
        train(cfg, verbose=False)
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "escaped").exists()


def write_sweep(tmp: Path, **spec: object) -> Path:
    raw = {"base": str(MONDRIAN), "set": {"trainer.max_epochs": 1}, "axes": {"optim.lr": [0.01]}, **spec}
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["../x", "..", "a/b", ".x"])
def test_sweep_names_that_leave_runs_sweeps_are_refused(tmp_path, monkeypatch, name) -> None:
    from tinct.engine.sweep import load_sweep, run_sweep

    monkeypatch.chdir(tmp_path)
    path = write_sweep(tmp_path, name=name)
    with pytest.raises(ConfigError, match=r"s\.yaml: invalid sweep file\n  name: "):
        load_sweep(path)
    with pytest.raises(ConfigError):
        run_sweep(path, progress=False)
    assert not (tmp_path / "runs").exists()


def test_axis_labels_name_trial_folders_inside_the_sweep(tmp_path) -> None:
    from tinct.engine.sweep import load_sweep

    axes = {"lab": {"../../x": {"optim.lr": 0.01}, "/abs": {"optim.lr": 0.02}, "..": {"optim.lr": 0.03}}}
    spec = load_sweep(write_sweep(tmp_path, name="labels", axes=axes))
    sweep_dir = tmp_path / "sweep"
    for point in spec.points():
        assert "/" not in point.slug and "\\" not in point.slug and point.slug.startswith("t00")
        trial = (sweep_dir / "runs" / point.slug).resolve()
        assert trial.parent == (sweep_dir / "runs").resolve()
        assert "/" not in spec.trial_config(point).name


def test_long_trial_names_are_shortened_to_a_valid_name(tmp_path) -> None:
    from tinct.engine.sweep import load_sweep

    spec = load_sweep(
        write_sweep(tmp_path, name="long", set={"name": "n" * 195}, axes={"model.hidden": [8, 16]})
    )
    for point in spec.points():
        name = spec.trial_config(point).name
        assert len(name.encode()) <= 200 and name.endswith(point.slug)


# -- trainer settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("accelerator", "gpux", "unknown accelerator 'gpux'; valid choices: 'cpu', 'gpu'"),
        ("precision", "17", "unknown precision '17'"),
        ("precision", "fp16", "'16-mixed'"),
        ("strategy", " ", "strategy must be a Lightning strategy name"),
    ],
)
def test_invalid_trainer_settings_name_the_field(tmp_path, key, value, message) -> None:
    with pytest.raises(ConfigError, match=rf"trainer\.{key}: Value error, .*{message}"):
        config_from_dict(tiny(tmp_path, trainer={key: value}))


def test_integer_precision_is_read_as_lightnings_string(tmp_path) -> None:
    assert config_from_dict(tiny(tmp_path, trainer={"precision": 16})).trainer.precision == "16"
    assert TrainerConfig(precision="bf16-mixed").precision == "bf16-mixed"


def test_a_gpu_accelerator_without_a_gpu_is_a_clear_config_error(tmp_path, monkeypatch) -> None:
    from tinct.engine.train import build_trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = config_from_dict(tiny(tmp_path, trainer={"accelerator": "gpu"}))
    with pytest.raises(
        ConfigError,
        match=r"trainer\.accelerator=gpu but no CUDA GPU is available on this machine; use cpu or auto",
    ):
        build_trainer(cfg, None, [])
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=cuda but no CUDA GPU"):
        train(config_from_dict(tiny(tmp_path)), accelerator="cuda", verbose=False)
    assert not (tmp_path / "runs").exists()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=mps but Apple's MPS is not available"):
        build_trainer(config_from_dict(tiny(tmp_path)), None, [], accelerator="mps")


def test_invalid_overrides_and_settings_lightning_refuses_are_config_errors(tmp_path) -> None:
    from tinct.engine.train import build_trainer

    cfg = config_from_dict(tiny(tmp_path))
    with pytest.raises(ConfigError, match=r"invalid trainer settings: trainer\.accelerator: .*'gpux'"):
        build_trainer(cfg, None, [], accelerator="gpux")
    with pytest.raises(ConfigError, match=r"Lightning refused the trainer settings \(.*devices=0"):
        build_trainer(cfg, None, [], devices=0)
    with pytest.raises(ConfigError, match=r"Lightning refused .*strategy='no_such_strategy'"):
        build_trainer(cfg, None, [], strategy="no_such_strategy")


# -- broken run folders and checkpoints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: [illuminant\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level, got list"),
        ("task: illuminant\nseed: many\n", "invalid configuration\n  seed"),
    ],
)
def test_a_broken_config_yaml_is_named(trained, tmp_path, text, message) -> None:
    run = copy_run(trained, tmp_path / "run")
    (run / "config.yaml").write_text(text)
    for call in (lambda: RunDir(run).config(), lambda: load_task(run), lambda: evaluate(run)):
        with pytest.raises(ConfigError, match=rf"{run / 'config.yaml'}: .*{message}"):
            call()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"truncated or not a checkpoint \(0 bytes"),
        (b"not a zip", r"truncated or not a checkpoint \(9 bytes"),
        (None, r"not a tinct checkpoint \(no 'state_dict'; found epoch\)"),
    ],
)
def test_truncated_or_foreign_checkpoints_are_named(trained, tmp_path, content, message) -> None:
    run = copy_run(trained, tmp_path / "run")
    best = run / "checkpoints" / "best.ckpt"
    if content is None:
        torch.save({"epoch": 3}, best)
    else:
        best.write_bytes(content)
    image = tmp_path / "a.npy"
    np.save(image, np.full((16, 16, 3), 0.5, dtype=np.float32))
    for call in (
        lambda: load_task(run),
        lambda: evaluate(run),
        lambda: predict(run, [image], tmp_path / "pred", progress=False),
    ):
        with pytest.raises(RunDirError, match=rf"best\.ckpt: {message}"):
            call()
    assert not (tmp_path / "pred").exists()


def test_overrides_that_change_the_network_are_named_when_loading(trained) -> None:
    with pytest.raises(
        ConfigError,
        match=r"best\.ckpt does not fit the network of .*config\.yaml with model\.hidden: .*shape",
    ):
        load_task(trained, overrides={"model.hidden": 16})


def test_resume_from_a_zero_byte_checkpoint_writes_nothing(trained, tmp_path) -> None:
    run = copy_run(trained, tmp_path / "run")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}
    with pytest.raises(RunDirError, match=r"last\.ckpt: truncated or not a checkpoint"):
        train(RunDir(run).config({"trainer.max_epochs": 2}), run_dir=run, resume=True, verbose=False)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()} == before


# -- tinct predict: unique outputs, skip and go on ---------------------------------------------------------


def write_npy(path: Path, value: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(int(value * 100))
    np.save(path, g.uniform(0.05, value, (16, 16, 3)).astype(np.float32))
    return path


def test_inputs_with_colliding_names_give_distinct_outputs(trained, tmp_path) -> None:
    from tinct.io.image import write_image

    src = tmp_path / "in"
    a_npy = write_npy(src / "a.npy")
    a_png = write_image(src / "a.png", torch.rand(3, 16, 16), bit_depth=16)
    x1 = write_npy(src / "A" / "x.npy", 0.6)
    x2 = write_npy(src / "B" / "x.npy", 0.7)
    folder = tmp_path / "folder"
    write_npy(folder / "x.npy", 0.8)
    write_npy(folder / "sub" / "x.npy", 0.9)
    rows = predict(trained, [a_npy, a_png, x1, x2, folder], tmp_path / "pred", progress=False)
    assert len(rows) == 6 and not any("error" in r for r in rows)
    outputs = [Path(r["preview"]) for r in rows]
    assert len(set(outputs)) == 6 and all(p.is_file() for p in outputs)
    pred = tmp_path / "pred"
    assert sorted(str(p.relative_to(pred)) for p in outputs) == sorted(
        [
            "a_npy_balanced.png",
            "a_png_balanced.png",
            "x_npy_balanced.png",
            "x_npy-2_balanced.png",
            "x_npy-3_balanced.png",  # folder/x.npy lands in the same output folder
            "sub/x_balanced.png",  # a folder argument's sub-folders are kept
        ]
    )
    table = pd.read_csv(pred / "predictions.csv")
    assert list(table["preview"]) == [str(p) for p in outputs]


def test_a_missing_input_is_skipped_recorded_and_the_rest_run(trained, tmp_path, capsys) -> None:
    good = write_npy(tmp_path / "good.npy")
    missing = tmp_path / "nonexist.png"
    rows = predict(trained, [missing, good], tmp_path / "pred", progress=False)
    assert capsys.readouterr().err.count(f"tinct: skipped {missing}: no such file or folder") == 1
    assert rows[0] == {"image": str(missing), "error": f"{missing}: no such file or folder"}
    assert rows[1]["image"] == str(good) and "error" not in rows[1] and Path(rows[1]["preview"]).is_file()
    table = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert table["image"].tolist() == [str(missing), str(good)] and table["error"].notna().tolist() == [
        True,
        False,
    ]
    with pytest.raises(DataError, match=r"no image files among .*nonexist\.png: no such file or folder"):
        predict(trained, [missing], tmp_path / "pred2", progress=False)


# -- fold counts ------------------------------------------------------------------------------------------


def write_constancy_folder(root: Path, n: int = 4, folds: list[int] | None = None) -> Path:
    g = np.random.default_rng(0)
    rows = []
    for i in range(n):
        light = g.uniform(0.3, 1.0, 3)
        write_npy(root / f"img{i}.npy")
        rows.append({"image": f"img{i}.npy", "r": light[0], "g": light[1], "b": light[2]})
    pd.DataFrame(rows).to_csv(root / "gt.csv", index=False)
    if folds is not None:
        pd.DataFrame({"image": [r["image"] for r in rows], "fold": folds}).to_csv(
            root / "folds.csv", index=False
        )
    return root


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        (1, "folds=1: cross-validation needs at least 2 folds"),
        (0, "folds=0: cross-validation needs at least 2 folds"),
        (-3, "folds=-3: cross-validation needs at least 2 folds"),
        (5, r"folds=5: more folds than images \(4 in .*data\); use 2 <= folds <= 4"),
    ],
)
def test_bad_fold_counts_are_config_errors(tmp_path, folds, message) -> None:
    from tinct.constancy.baselines import run_baselines
    from tinct.constancy.crossval import crossval

    data = write_constancy_folder(tmp_path / "data")
    with pytest.raises(ConfigError, match=message):
        run_baselines(data, folds=folds, out=tmp_path / "b", methods=["gray_world"], progress=False)
    cfg = config_from_dict(tiny(tmp_path))
    with pytest.raises(ConfigError, match=message):
        crossval(cfg, data, folds=folds, out=tmp_path / "cv", progress=False)
    assert not (tmp_path / "b").exists() and not (tmp_path / "cv").exists()


def test_a_folds_csv_with_one_fold_is_a_data_error(tmp_path) -> None:
    from tinct.constancy.baselines import run_baselines
    from tinct.constancy.crossval import crossval

    data = write_constancy_folder(tmp_path / "data", folds=[0, 0, 0, 0])
    with pytest.raises(
        DataError, match=r"folds\.csv: cross-validation needs at least 2 folds, the file has 1"
    ):
        run_baselines(data, out=tmp_path / "b", methods=["gray_world"], progress=False)
    with pytest.raises(DataError, match=r"folds\.csv: cross-validation needs at least 2 folds"):
        crossval(config_from_dict(tiny(tmp_path)), data, out=tmp_path / "cv", progress=False)
