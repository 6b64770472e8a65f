"""tinct study transfer on a tiny folder: every table and figure, resuming, bad inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tinct.colorization.transfer.study import STUDY_COLUMNS, study_transfer
from tinct.core.exceptions import ConfigError

TINY = [
    "data.resize=40", "data.crop=32", "data.eval_size=32", "data.batch_size=8", "model.width=0.125",
    "data.val_fraction=0.2", "data.test_fraction=0.3", "data.groups={warm: [red], cool: [green, blue]}",
    "trainer.progress=none", "trainer.precision=32-true",
]  # fmt: skip


def test_study_transfer_tables_figures_and_resume(
    tmp_path: Path, make_hue_folder: Callable[..., Path], make_colorizer_file: Callable[..., Path]
) -> None:
    root = make_hue_folder(tmp_path / "hues", per_class=10)
    init = make_colorizer_file(tmp_path / "colorizer.pt")
    out = tmp_path / "study"
    kwargs = {
        "data": root, "init": init, "epochs": 2, "overrides": TINY, "random_seeds": 1, "features": 64, "seeds": 2,
    }  # fmt: skip
    table = study_transfer(out, progress=False, **kwargs)
    assert list(table.columns) == list(STUDY_COLUMNS)
    assert len(table) == 5 and table["Model"].iloc[-1].startswith("CIELAB histogram")
    assert table["Input"].tolist() == ["lightness", "lightness", "lightness", "colour", "colour"]
    saved = pd.read_csv(out / "study.csv")
    assert saved["Test accuracy"].tolist() == pytest.approx(table["Test accuracy"].tolist())
    record = json.loads((out / "study.json").read_text())
    for slug in ("finetuned", "frozen", "scratch", "scratch_color"):
        report = json.loads((out / slug / "classification_metrics.json").read_text())
        assert record["variants"][slug]["test"]["accuracy"] == report["accuracy"]
        assert (out / "figures" / f"confusion_{slug}.png").is_file()
    # the frozen variant kept the colorizer's first 5 blocks; the margins are paired over the same photos
    assert record["variants"]["frozen"]["frozen_blocks"] == 5
    assert record["margins"]["finetuned_minus_scratch"]["n_photos"] == report["n"]
    assert set(record["timings_s"]) == {
        "train finetuned", "train frozen", "train scratch", "train scratch_color", "probes",
        "histogram baseline", "interpretability", "train finetuned seed 1", "train scratch seed 1",
    }  # fmt: skip
    # the claim's pair with a second seed: the margin over seeds pairs the photos' mean correctness
    seeds = record["seeds"]
    assert (out / "finetuned-seed1" / "metrics.json").is_file() and (out / "scratch-seed1").is_dir()
    assert seeds["finetuned"]["accuracies"][0] == pytest.approx(
        100 * record["variants"]["finetuned"]["test"]["accuracy"]
    )
    margin = seeds["margin"]
    assert margin["seeds"] == 2 and margin["ci95"][0] <= margin["points"] <= margin["ci95"][1]
    assert margin["points"] == pytest.approx(seeds["finetuned"]["mean"] - seeds["scratch"]["mean"])
    text = (out / "study.md").read_text()
    assert "Linear probes" in text and "Semantic interpretability" in text and "\n#" not in text
    assert "Over 2 training seeds" in text
    for figure in ("transfer_curves", "probe_accuracy", "confusion_histogram", "interpretability"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0
    # resumed: nothing is trained or timed again, the same table comes back
    stamp = (out / "finetuned" / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    timings = json.loads((out / "timings.json").read_text())
    again = study_transfer(out, progress=False, **kwargs)
    assert (out / "finetuned" / "checkpoints" / "best.ckpt").stat().st_mtime_ns == stamp
    assert json.loads((out / "timings.json").read_text()) == timings
    pd.testing.assert_frame_equal(again, table)


def test_study_transfer_refuses_bad_requests(tmp_path: Path, make_hue_folder: Callable[..., Path]) -> None:
    root = make_hue_folder(tmp_path / "hues", per_class=4)
    with pytest.raises(ConfigError, match="unknown transfer variant"):
        study_transfer(tmp_path / "s", data=root, overrides=TINY, variants=["bogus"], progress=False)
    with pytest.raises(ConfigError, match=r"model\.init"):
        study_transfer(tmp_path / "s", data=root, overrides=[*TINY, "model.init=null"], progress=False)
    with pytest.raises(ConfigError, match="classification config"):
        study_transfer(tmp_path / "s", "configs/colorization/eccv16_photos.yaml", progress=False)
