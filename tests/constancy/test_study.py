import importlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tinct.constancy.crossval import read_errors
from tinct.constancy.study import (
    SEED_REFERENCE,
    STUDY_COLUMNS,
    VARIANTS,
    Variant,
    markdown_table,
    pretrain_config,
    study_constancy,
)
from tinct.engine import experiments, train
from tinct.engine.config import config_from_dict

TINY = {
    "task": "illuminant",
    "name": "study-tiny",
    "seed": 0,
    "data": {
        "size": 16,
        "batch_size": 8,
        "augment": {"enabled": False},
        "synth_n": 16,
        "synth_size": [48, 32],
    },
    "model": {"backbone": "small_cnn", "width": 4, "depth": 2, "hidden": 8},
    "optim": {"lr": 0.01},
    "trainer": {"max_epochs": 1, "progress": "none"},
}


def recording(calls: list[str]):
    def wrapped(cfg, *, run_dir, **kw):
        calls.append(str(Path(run_dir)))
        return train(cfg, run_dir=run_dir, **kw)

    return wrapped


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("study")
    base = config_from_dict({**TINY, "output_dir": str(tmp / "runs")})
    calls: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiments, "train", recording(calls))
        mp.setattr(
            importlib.import_module("tinct.engine.train"), "plot_learning_curves", lambda *a, **k: None
        )  # a second per run
        table = study_constancy(
            tmp / "out", base_config=base, pretrain_epochs=1, progress=False, baselines=False
        )
    return tmp / "out", base, table, calls


def test_variants_names_and_slugs() -> None:
    assert [v.name for v in VARIANTS] == [
        "linear, supervised",
        "linear, contrastive + frozen",
        "linear, contrastive + full",
        "log, supervised",
        "log, contrastive + frozen",
        "log, contrastive + full",
    ]
    assert Variant("log", "frozen").slug == "log-contrastive-frozen"
    with pytest.raises(ValueError, match="training regime"):
        Variant("log", "semi")


def test_table_has_the_seed_columns_and_six_rows(synthetic_study) -> None:
    out, _, table, _ = synthetic_study
    assert tuple(table.columns) == STUDY_COLUMNS
    assert table["Type"].tolist() == [v.name for v in VARIANTS]
    assert table["Epochs"].tolist() == ["1", "1 + 1", "1 + 1"] * 2
    saved = pd.read_csv(out / "study.csv", dtype={"Epochs": str})
    assert tuple(saved.columns) == STUDY_COLUMNS
    pd.testing.assert_frame_equal(saved, table, check_dtype=False)
    md = (out / "study.md").read_text()
    assert "| Type | Epochs | Mean | Median | Trimean | Worst25 | Best25 | Seed mean | Seed median |" in md
    for f in ("error_cdf.png", "curves.png"):
        assert (out / "figures" / f).stat().st_size > 1000


def test_seed_figures_sit_beside_their_rows(synthetic_study) -> None:
    # the seed study's best GoogLeNet on log input and its best contrastive model (regime not given: both
    # log contrastive rows); the seed gives nothing for linear input
    out, base, table, _ = synthetic_study
    seed = table.set_index("Type")[["Seed mean", "Seed median"]]
    assert tuple(seed.loc["log, supervised"]) == (1.42, 0.87)
    assert tuple(seed.loc["log, contrastive + frozen"]) == (1.99, 1.59)
    assert tuple(seed.loc["log, contrastive + full"]) == (1.99, 1.59)
    assert seed.loc[[v.name for v in VARIANTS if v.input_space == "linear"]].isna().all().all()
    assert set(SEED_REFERENCE) <= {v.name for v in VARIANTS}
    md = (out / "study.md").read_text()
    assert md.count("| - | - |") == 3  # the linear rows
    assert "| 1.42 | 0.87 |" in md
    size = f"{base.data.size} x {base.data.size} thumbnails"  # 64 x 64 in the recipe
    assert "SimpleCube++" in md and "full-resolution" in md and size in md  # not like-for-like


def test_numbers_are_each_variants_pooled_statistics(synthetic_study) -> None:
    out, _, table, _ = synthetic_study
    summary = json.loads((out / "study.json").read_text())
    for v, (_, row) in zip(VARIANTS, table.iterrows(), strict=True):
        m = json.loads((out / v.slug / "cv_metrics.json").read_text())
        assert summary["variants"][v.name]["mean"] == m["mean"]
        for col in ("Mean", "Median", "Trimean", "Worst25", "Best25"):
            assert row[col] == round(m[col.lower()], 2)
        # scored on the synthetic test split: a quarter of the 16 images
        assert m["n"] == 4


def test_pretraining_runs_once_per_input_space_and_is_shared(synthetic_study) -> None:
    from tinct.engine import RunDir

    out, _, _, calls = synthetic_study
    pre = [c for c in calls if "pretrain" in c]
    assert sorted(pre) == sorted(str(out / "pretrain" / s / "holdout") for s in ("linear", "log"))
    assert len(calls) == 6 + 2
    for space in ("linear", "log"):
        last = (out / "pretrain" / space / "holdout" / "checkpoints" / "last.ckpt").resolve()
        for regime in ("frozen", "full"):
            model = RunDir(out / f"{space}-contrastive-{regime}" / "holdout").config().model
            assert (model.init, model.freeze, model.input_space) == (str(last), regime == "frozen", space)
        assert RunDir(out / "pretrain" / space / "holdout").config().model.input_space == space


def test_rerun_skips_finished_variants(synthetic_study, monkeypatch) -> None:
    out, base, table, _ = synthetic_study

    def no_training(*args, **kwargs):
        raise AssertionError("a finished variant was trained again")

    monkeypatch.setattr(experiments, "train", no_training)
    again = study_constancy(out, base_config=base, progress=False, baselines=False)
    pd.testing.assert_frame_equal(again, table)


def test_classical_and_ffcc_rows_score_the_same_test_images(synthetic_study) -> None:
    from tinct.constancy.classical import CLASSICAL_METHODS

    out, base, _, _ = synthetic_study
    table = study_constancy(out, base_config=base, progress=False)  # variants done: only the baselines run
    classical = table.iloc[len(VARIANTS) :]
    assert classical["Type"].tolist() == [m.label for m in CLASSICAL_METHODS.values()] + [
        "FFCC (Barron & Tsai 2017)"
    ]
    assert (classical["Epochs"] == "-").all()
    assert classical[["Seed mean", "Seed median"]].isna().all().all()
    stats = json.loads((out / "baselines" / "baselines.json").read_text())
    assert classical["Mean"].tolist() == [round(s["mean"], 2) for s in stats.values()]
    details = json.loads((out / "baselines" / "baselines_details.json").read_text())
    assert details["protocol"]["kind"] == "train_test"
    held_out = set(read_errors(out / "linear-supervised" / "cv_errors.csv")["image"])
    for m in details["methods"].values():
        assert set(m["per_image"]["image"]) == held_out


def test_folder_data_runs_crossval_per_variant_with_shared_pretraining(tmp_path: Path, monkeypatch) -> None:
    from test_crossval import make_folder

    from tinct.constancy import study as study_mod
    from tinct.engine.statistics import error_statistics

    data = make_folder(tmp_path / "data", n=8, folds=[0, 1] * 4)
    base = config_from_dict({**TINY, "output_dir": str(tmp_path / "runs")})
    seen = []

    def fake_crossval(cfg, data_, folds, out, pretrain_cfg, progress, *, pretrain_out, updates, figures):
        # the cross-validation itself is tested in test_crossval; here only what the study asks of it
        seen.append((cfg, folds, Path(out), pretrain_cfg, pretrain_out, updates))
        errors = [1.0, 2.0, 3.0, float(len(seen))]
        Path(out).mkdir(parents=True)
        pd.DataFrame({"error": errors}).to_csv(Path(out) / "cv_errors.csv", index=False)
        return {**error_statistics(errors), "epochs": 1, "pretrain_epochs": 1}

    monkeypatch.setattr(study_mod, "crossval", fake_crossval)
    table = study_constancy(
        tmp_path / "out", data, base_config=base, progress=False, overrides=["model.hidden=6"]
    )
    assert table["Type"].tolist()[: len(VARIANTS)] == [v.name for v in VARIANTS]
    protocol = json.loads((tmp_path / "out" / "baselines" / "baselines_details.json").read_text())["protocol"]
    assert (protocol["folds"], protocol["fold_source"]) == (2, "folds.csv")  # the study's folds
    means = table["Mean"].tolist()[: len(VARIANTS)]
    assert means == [round(error_statistics([1, 2, 3, k])["mean"], 2) for k in range(1, 7)]
    for v, (cfg, folds, out, pre, pre_out, updates) in zip(VARIANTS, seen, strict=True):
        assert folds == 2  # from folds.csv
        assert out == tmp_path / "out" / v.slug
        assert cfg.model.input_space == v.input_space and cfg.model.init is None
        assert cfg.model.hidden == 6  # --set
        assert updates == {"model.freeze": v.training == "frozen"}
        if v.pretrained:
            assert pre.task == "illuminant_embedding" and pre.model.input_space == v.input_space
            assert pre_out == tmp_path / "out" / "pretrain" / v.input_space  # shared by frozen and full
        else:
            assert pre is None


def test_pretrain_config_matches_the_backbone() -> None:
    base = config_from_dict({**TINY, "model": {**TINY["model"], "input_space": "log"}})
    pre = pretrain_config(base, epochs=3)
    assert pre.task == "illuminant_embedding" and pre.trainer.max_epochs == 3
    assert (pre.model.backbone, pre.model.width, pre.model.depth, pre.model.input_space) == (
        "small_cnn",
        4,
        2,
        "log",
    )
    assert pre.data == base.data


def test_markdown_table() -> None:
    df = pd.DataFrame([{"Type": "a", "Epochs": "2", "Mean": 1.234, "Median": 1.0}])
    assert markdown_table(df).splitlines() == [
        "| Type | Epochs | Mean | Median |",
        "|---|---|---:|---:|",
        "| a | 2 | 1.23 | 1.00 |",
    ]


def test_the_study_takes_its_grid_and_pretraining_from_its_sweep_file() -> None:
    from tinct.constancy.study import (
        DEFAULT_BASE_CONFIG,
        DEFAULT_SWEEP,
        VARIANTS,
        pretrain_config,
        sweep_variants,
    )
    from tinct.engine.experiments import find_shipped, load_base_config
    from tinct.engine.sweep import load_sweep

    spec = load_sweep(find_shipped(DEFAULT_SWEEP), {"data.kind": "synthetic"})
    assert sweep_variants(spec) == list(VARIANTS)
    assert spec.resolve(spec.base) == find_shipped(DEFAULT_BASE_CONFIG).resolve()  # thumbnails_cnn.yaml
    assert spec.set["trainer.max_epochs"] == 100  # the CPU budget (arithmetic in the sweep file)
    base = load_base_config(None, ["data.kind=synthetic"], DEFAULT_BASE_CONFIG)
    ours, old = spec.pretrain_config(base).model_dump(), pretrain_config(base).model_dump()
    ours.pop("name"), old.pop("name")
    assert ours["trainer"].pop("max_epochs") == 50  # the stage's own budget; every other setting shared
    old["trainer"].pop("max_epochs")
    assert ours == old  # otherwise the shipped stage is exactly the pretraining the study always derived


def test_study_configs_match_the_cnn_base() -> None:
    # thumbnails_linear.yaml and contrastive_thumbnails.yaml claim to be twins of the study's CNN base
    from tinct.core.config import read_yaml_file
    from tinct.engine.experiments import find_shipped

    def read(name: str) -> dict:
        return read_yaml_file(find_shipped(f"configs/constancy/{name}"), "config")

    cnn, linear, contrastive = (
        read(n) for n in ("thumbnails_cnn.yaml", "thumbnails_linear.yaml", "contrastive_thumbnails.yaml")
    )
    assert cnn["model"]["backbone"] == "small_cnn"
    assert {**linear, "name": cnn["name"], "model": {**linear["model"], "input_space": "log"}} == cnn
    assert contrastive["data"] == cnn["data"]
    for key in ("backbone", "width", "depth", "input_space"):
        assert contrastive["model"][key] == cnn["model"][key]
    assert contrastive["optim"] == cnn["optim"] and contrastive["seed"] == cnn["seed"]


def test_set_reaches_the_sweep_base_the_variants_and_the_pretraining(tmp_path: Path, monkeypatch) -> None:
    # the GPU recipe: tinct study constancy --data DIR --set model.backbone=googlenet --set trainer.accelerator=gpu
    from test_crossval import make_folder

    from tinct.constancy import study as study_mod
    from tinct.engine.statistics import error_statistics

    data = make_folder(tmp_path / "data", n=6, folds=[0, 1, 2] * 2)
    seen = []

    def fake_crossval(cfg, data_, folds, out, pretrain_cfg, progress, *, pretrain_out, updates, figures):
        seen.append((cfg, pretrain_cfg))
        Path(out).mkdir(parents=True)
        pd.DataFrame({"error": [1.0, 2.0]}).to_csv(Path(out) / "cv_errors.csv", index=False)
        return {**error_statistics([1.0, 2.0]), "epochs": 1, "pretrain_epochs": 1}

    monkeypatch.setattr(study_mod, "crossval", fake_crossval)
    monkeypatch.setattr(study_mod, "_figures", lambda *a, **k: None)
    overrides = ["model.backbone=googlenet", "trainer.accelerator=gpu", "trainer.max_epochs=7"]
    study_constancy(tmp_path / "out", data, overrides=overrides, progress=False, baselines=False)
    assert len(seen) == len(VARIANTS)
    for (cfg, pre), v in zip(seen, VARIANTS, strict=True):
        assert cfg.name.startswith("thumbnails-cnn")  # the sweep file's base
        assert (cfg.model.backbone, cfg.trainer.accelerator) == ("googlenet", "gpu")
        assert cfg.trainer.max_epochs == 7  # --set wins over the sweep file's budget
        if v.pretrained:
            assert (pre.model.backbone, pre.trainer.accelerator) == ("googlenet", "gpu")
            assert pre.trainer.max_epochs == 50  # the pretraining stage's budget
    saved = json.loads((tmp_path / "out" / "study.json").read_text())
    assert saved["base_config"]["model"]["backbone"] == "googlenet"


def test_best_classical_curve_is_chosen_on_training_folds(tmp_path: Path, monkeypatch) -> None:
    # White Patch is best on the held-out images, Gray World on the training folds it was tuned on: the
    # error-CDF figure shows Gray World as the best classical method
    import numpy as np

    from tinct.constancy import plots
    from tinct.constancy import study as study_mod

    held_out = {"gray_world": {"mean": 4.0}, "white_patch": {"mean": 3.0}, "ffcc": {"mean": 1.0}}
    folds = {
        "gray_world": [{"train_mean": 2.0, "n_train": 20}, {"train_mean": 2.2, "n_train": 20}],
        "white_patch": [{"train_mean": 2.5, "n_train": 20}, {"train_mean": 2.9, "n_train": 20}],
        "ffcc": [{"n_train": 20, "n_test": 20}, {"n_train": 20, "n_test": 20}],  # trained: no grid error
    }
    details = {"methods": {m: {**held_out[m], "folds": f} for m, f in folds.items()}}
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "baselines_details.json").write_text(json.dumps(details))
    errors = {m: np.array([s["mean"]]) for m, s in held_out.items()}
    shown: dict[str, list[str]] = {}
    monkeypatch.setattr(plots, "plot_error_cdf", lambda e, *a, **k: shown.setdefault("cdf", list(e)))
    monkeypatch.setattr(plots, "plot_fold_curves", lambda *a, **k: None)
    study_mod._figures(tmp_path, [], held_out, errors, None)
    assert (
        study_mod.best_classical(tmp_path / "baselines" / "baselines_details.json", held_out) == "gray_world"
    )
    # FFCC is drawn as itself, never as the "best classical" method
    assert len(shown["cdf"]) == 2 and shown["cdf"][0] == "FFCC (Barron & Tsai 2017)"
    assert shown["cdf"][1].startswith(study_mod._classical_name("gray_world"))
