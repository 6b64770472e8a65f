"""Semantic interpretability of recolorized photos (tinct.colorization.transfer.semantic)."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tinct.color.lab import rgb_to_lab
from tinct.colorization.colorize import load_colorizer
from tinct.colorization.pretrained import ECCV16_COLORIZER, SIGGRAPH17_COLORIZER
from tinct.colorization.transfer import semantic
from tinct.colorization.transfer.semantic import (
    GRAYSCALE,
    ORIGINAL,
    interpretability_versions,
    paired_bootstrap_ci,
    recolorized_name,
    recovered_share,
    semantic_interpretability,
)
from tinct.core.exceptions import ConfigError, DataError, RunDirError

GROUPS = {"warm": ["red"], "cool": ["green", "blue"]}


@pytest.fixture(scope="module")
def color_run(
    make_hue_folder: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A tiny classifier of colour photos (a few seconds on the CPU) and its data folder."""
    from tinct.engine.config import config_from_dict
    from tinct.engine.train import train

    base = tmp_path_factory.mktemp("semantic")
    root = make_hue_folder(base / "hues")
    cfg = config_from_dict(
        {
            "task": "classification",
            "name": "hues",
            "output_dir": str(base),
            "data": {
                "root": str(root), "input": "color", "resize": 40, "crop": 32, "eval_size": 32,
                "batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.3, "groups": GROUPS,
            },
            "model": {"width": 0.125, "head": "linear"},
            "optim": {"lr": 0.03},
            "trainer": {"max_epochs": 10, "progress": "none"},
        }
    )  # fmt: skip
    train(cfg, run_dir=base / "run", verbose=False)
    return base / "run", root


@pytest.fixture(scope="module")
def eccv16() -> object:
    return load_colorizer(ECCV16_COLORIZER.path())[0]


def test_versions_keep_lightness(eccv16: object) -> None:
    g = torch.Generator().manual_seed(0)
    rgb = torch.nn.functional.interpolate(
        torch.rand(1, 3, 4, 5, generator=g), size=(24, 32), mode="bilinear"
    )[0]
    v = interpretability_versions(rgb, {"eccv16": eccv16})
    assert list(v) == [ORIGINAL, GRAYSCALE, recolorized_name("eccv16")]
    assert all(t.shape == rgb.shape and 0 <= t.min() and t.max() <= 1 for t in v.values())
    torch.testing.assert_close(v[ORIGINAL], rgb)
    lab = rgb_to_lab(rgb)
    gray = rgb_to_lab(v[GRAYSCALE])
    assert gray[1:].abs().max() < 0.01  # a* = b* = 0
    assert (gray[0] - lab[0]).abs().max() < 0.5  # the photo's L*
    recolored = rgb_to_lab(v[recolorized_name("eccv16")])
    assert (recolored[0] - lab[0]).abs().max() < 0.5  # the colorizer keeps L*
    assert recolored[1:].abs().max() > 1.0  # and adds colour
    with pytest.raises(ValueError):
        interpretability_versions(rgb[None], {})


def test_recovered_share() -> None:
    # Zhang et al. (2016), table 1: 68.3 -> 52.7 -> 56.0 % recovers 3.3 / 15.6 of the drop.
    assert recovered_share(56.0, 52.7, 68.3) == pytest.approx(3.3 / 15.6)
    assert recovered_share(0.7, 0.5, 1.0) == pytest.approx(0.4)
    assert recovered_share(1.0, 0.5, 1.0) == 1.0
    assert recovered_share(0.4, 0.5, 1.0) == pytest.approx(-0.2)  # worse than grayscale
    assert math.isnan(recovered_share(0.9, 0.8, 0.8))  # no drop to recover
    assert math.isnan(recovered_share(0.9, 0.9, 0.8))


def test_table_of_a_constructed_case() -> None:
    # 10 photos of 2 classes: originals all right, grayscale 5 right, recolorized 7 right.
    labels = np.array([0, 1] * 5)
    wrong = 1 - labels
    predictions = {
        ORIGINAL: labels.tolist(),
        GRAYSCALE: np.where(np.arange(10) < 5, labels, wrong).tolist(),
        recolorized_name("x"): np.where(np.arange(10) < 7, labels, wrong).tolist(),
    }
    table, summaries = semantic._table(labels, predictions, ["a", "b"], None, seed=0, n_boot=500)
    row = table.set_index("version")
    assert list(row["accuracy"]) == [1.0, 0.5, 0.7]
    assert list(row["drop_vs_original"]) == pytest.approx([0.0, 0.5, 0.3])
    assert list(row["vs_grayscale"]) == pytest.approx([0.5, 0.0, 0.2])
    assert row.loc[recolorized_name("x"), "recovered"] == pytest.approx(0.4)
    assert row["recovered"].iloc[:2].isna().all()
    assert row["within_group_confusion"].isna().all()  # no groups
    assert (row["n"] == 10).all()
    low, high = row.loc[recolorized_name("x"), ["ci95_vs_gray_low", "ci95_vs_gray_high"]]
    assert 0.0 <= low <= 0.2 <= high <= 1.0  # per photo the recolorized version only gains on grayscale
    assert summaries[GRAYSCALE]["matrix"] == [[3, 2], [3, 2]]  # rows: true class


def test_paired_bootstrap_ci() -> None:
    same = np.array([1, 0, 1, 1, 0])
    assert paired_bootstrap_ci(same, same) == (0.0, 0.0)
    assert paired_bootstrap_ci(np.ones(6), np.zeros(6)) == (1.0, 1.0)
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    low, high = paired_bootstrap_ci(a, b, n_boot=1000, seed=3)
    assert low < (a - b).mean() < high
    assert (low, high) == paired_bootstrap_ci(a, b, n_boot=1000, seed=3)  # reproducible
    assert all(math.isnan(v) for v in paired_bootstrap_ci(np.array([]), np.array([])))


def test_semantic_interpretability_of_a_run(color_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = color_run
    out = tmp_path / "semantic"
    table = semantic_interpretability(
        run, {"eccv16": ECCV16_COLORIZER.path()}, out=out, progress=False, n_boot=200
    )
    versions = [ORIGINAL, GRAYSCALE, recolorized_name("eccv16")]
    assert list(table["version"]) == versions
    row = table.set_index("version")
    # The originals are exactly the run's test photos and crops: its own test accuracy and predictions.
    metrics = json.loads((run / "metrics.json").read_text())
    assert row.loc[ORIGINAL, "accuracy"] == pytest.approx(metrics["test/accuracy"], abs=1e-6)
    assert row.loc[ORIGINAL, "macro_f1"] == pytest.approx(metrics["test/macro_f1"], abs=1e-6)
    own = pd.read_csv(run / "classification_predictions.csv").set_index("image")["predicted"]
    mine = pd.read_csv(out / "interpretability_predictions.csv").set_index("image")
    assert len(mine) == len(own) == int(row.loc[ORIGINAL, "n"])
    assert mine[ORIGINAL].to_dict() == own.to_dict()
    acc = row["accuracy"]
    np.testing.assert_allclose(row["drop_vs_original"], acc[ORIGINAL] - acc)
    np.testing.assert_allclose(row["vs_grayscale"], acc - acc[GRAYSCALE])
    rec = row.loc[recolorized_name("eccv16")]
    assert rec["recovered"] == pytest.approx(
        recovered_share(rec["accuracy"], acc[GRAYSCALE], acc[ORIGINAL]), nan_ok=True
    )
    assert (row["ci95_vs_gray_low"] <= row["vs_grayscale"] + 1e-9).all()
    assert (row["vs_grayscale"] <= row["ci95_vs_gray_high"] + 1e-9).all()
    # data.groups is set: a share of confusions wherever something was confused
    assert np.isfinite(row.loc[GRAYSCALE, "within_group_confusion"]) or acc[GRAYSCALE] == 1.0
    for name in ("interpretability.csv", "interpretability.json", "interpretability.md"):
        assert (out / name).stat().st_size > 0
    for name in ("interpretability.png", "interpretability_examples.png"):
        assert (out / "figures" / name).stat().st_size > 0
    assert "68.3" in (out / "interpretability.md").read_text()
    saved = json.loads((out / "interpretability.json").read_text())
    assert saved["complete"] and set(saved["predictions"]) == set(versions)
    assert saved["versions"][ORIGINAL]["groups"] == GROUPS
    pd.testing.assert_frame_equal(pd.read_csv(out / "interpretability.csv"), table, check_dtype=False)


def test_rerun_resumes(color_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = color_run
    out = tmp_path / "semantic"
    first = semantic_interpretability(run, {"eccv16": ECCV16_COLORIZER.path()}, out=out, progress=False)

    calls: list[object] = []
    real = semantic._versions

    def spy(rgb: torch.Tensor, colorizers: dict, names: object = None) -> dict:
        calls.append(None if names is None else sorted(names))
        return real(rgb, colorizers, names)

    monkeypatch.setattr(semantic, "_versions", spy)
    again = semantic_interpretability(run, {"eccv16": ECCV16_COLORIZER.path()}, out=out, progress=False)
    pd.testing.assert_frame_equal(again, first)
    assert calls == []  # nothing classified or colorized again
    # One more colorizer: only its recolorizations are made (then the example figure is redrawn).
    more = semantic_interpretability(
        run,
        {"eccv16": ECCV16_COLORIZER.path(), "siggraph17": SIGGRAPH17_COLORIZER.path()},
        out=out,
        progress=False,
        examples=0,
    )
    assert calls and all(c == [recolorized_name("siggraph17")] for c in calls)
    pd.testing.assert_frame_equal(more.iloc[:3], first)


def test_every_photo_of_a_folder(color_run: tuple[Path, Path]) -> None:
    run, root = color_run
    table = semantic_interpretability(run, {}, data=root, progress=False, n_boot=50)
    assert list(table["version"]) == [ORIGINAL, GRAYSCALE]
    assert table["n"].iloc[0] >= 30  # (nearly) all 36 photos, not the 8 of the test split
    with pytest.raises(DataError):
        semantic_interpretability(run, {}, data=root / "missing", progress=False)


def test_refuses_a_lightness_classifier(color_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = color_run
    lightness = tmp_path / "lightness"
    shutil.copytree(run, lightness)
    cfg = yaml.safe_load((lightness / "config.yaml").read_text())
    cfg["data"]["input"] = "lightness"
    (lightness / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"data\.input: color"):
        semantic_interpretability(lightness, {}, progress=False)
    with pytest.raises(RunDirError):
        semantic_interpretability(tmp_path / "nothing", {}, progress=False)
    with pytest.raises(RunDirError):
        semantic_interpretability(run, {"x": tmp_path / "missing.pt"}, progress=False)
    with pytest.raises(ConfigError, match="name"):
        semantic_interpretability(run, {" ": ECCV16_COLORIZER.path()}, progress=False)
