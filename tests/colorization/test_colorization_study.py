"""``tinct study colorization``: three variants, one table, figures, resumable."""

import json
from pathlib import Path

import numpy as np
import pytest

from tinct.cli.main import main
from tinct.colorization.study import STUDY_COLUMNS, study_colorization
from tinct.colorization.task import ColorizationConfig, ColorizationDataConfig, ColorizationModelConfig
from tinct.core.exceptions import ConfigError


def _base(tmp_path: Path) -> ColorizationConfig:
    cfg = ColorizationConfig(
        name="study",
        output_dir=str(tmp_path / "runs"),
        data=ColorizationDataConfig(
            kind="skimage", resize=48, crop=32, eval_size=40, samples_per_epoch=8, batch_size=4
        ),
        model=ColorizationModelConfig(width=0.125, infer_size=48),
    )
    cfg.trainer.max_epochs = 1
    cfg.trainer.progress = "none"
    return cfg


def test_study_table_figures_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "study"
    table = study_colorization(out, _base(tmp_path), progress=False, examples=2)
    assert list(table.columns) == list(STUDY_COLUMNS)
    assert list(table["Model"]) == [
        "classification + rebalancing",
        "classification, no rebalancing",
        "L2 regression",
        "grayscale (ab = 0)",
        "original photos",
    ]
    assert np.isfinite(table.iloc[:4, 2:].to_numpy(dtype=float)).all()
    assert 0 < table["AuC rebalanced"].iloc[0] <= 100  # percent
    for name in ("study.csv", "study.md", "study.json", "figures/metrics.png", "figures/examples.png"):
        assert (out / name).is_file(), name
    md = (out / "study.md").read_text()
    assert "| L2 regression |" in md
    # the checkpoint of each run, and the validation value that chose it, are stated
    val = json.loads((out / "regression_l2" / "metrics.json").read_text())["val/auc_rebalanced"]
    assert f"L2 regression: epoch 1, {100 * val:.2f}" in md and "test photos choose nothing" in md
    # Rerunning trains and evaluates nothing again.
    stamp = (out / "regression_l2" / "metrics.json").stat().st_mtime_ns
    again = study_colorization(out, _base(tmp_path), progress=False, examples=0)
    assert (out / "regression_l2" / "metrics.json").stat().st_mtime_ns == stamp
    assert again.equals(table)


def test_study_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown colorization variant"):
        study_colorization(tmp_path, _base(tmp_path), variants=["gan"], progress=False)
    code = main(["study", "colorization", "--out", str(tmp_path), "--config", str(tmp_path / "missing.yaml")])
    assert code == 2


def test_the_study_variants_are_the_points_of_its_sweep_file() -> None:
    from tinct.colorization.study import study_variants

    got = [(v.slug, v.name, v.overrides) for v in study_variants()]
    assert got == [
        (
            "classification_rebalanced",
            "classification + rebalancing",
            {"model.head": "classification", "model.rebalance": True},
        ),
        (
            "classification",
            "classification, no rebalancing",
            {"model.head": "classification", "model.rebalance": False},
        ),
        ("regression_l2", "L2 regression", {"model.head": "regression", "model.rebalance": False}),
    ]
