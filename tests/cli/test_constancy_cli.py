"""The colour-constancy commands end to end from the command line (tiny data, tiny budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinct.cli.main import main

FIVE = {"mean", "median", "trimean", "best25", "worst25"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "synth"
    assert main(["data", "synth-constancy", "--out", str(out), "--n", "12", "--size", "48x32"]) == 0
    return out


def test_synth_then_baselines(synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (synth / "train" / "gt.csv").is_file() and (synth / "test" / "gt.csv").is_file()
    assert main(["baselines", "constancy", "--data", str(synth), "--out", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "baselines.json").read_text())
    assert {
        "gray_world",
        "white_patch",
        "shades_of_gray",
        "general_gray_world",
        "gray_edge_1",
        "gray_edge_2",
    } <= set(stats)
    assert all(set(v) == FIVE for v in stats.values())
    assert "Gray World" in capsys.readouterr().out


def test_convert_then_crossval(synth: Path, tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbs"
    assert main(["data", "convert-constancy", str(synth), str(thumbs), "--size", "16"]) == 0
    assert len(list(thumbs.glob("*.npy"))) == 12
    config = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "thumbnails.yaml"
    code = main(
        ["crossval", str(config), "--data", str(thumbs), "--folds", "3", "--out", str(tmp_path / "cv"),
         "--set", "trainer.max_epochs=1", "--set", "data.size=16", "--set", "model.width=4",
         "--set", "trainer.progress=none", "--set", f"output_dir={tmp_path}"]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())
    assert FIVE <= set(metrics) and metrics["n"] == 12 and metrics["folds"] == 3


def test_bad_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baselines", "constancy", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "nope: dataset folder not found" in capsys.readouterr().err


def test_unknown_camera_lists_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["data", "synth-constancy", "--out", str(tmp_path / "s"), "--n", "2", "--camera", "canon"]) == 2
    )
    assert "nikon_d5100" in capsys.readouterr().err


def test_study_on_a_folder_with_the_shipped_configs(synth: Path, tmp_path: Path) -> None:
    # no --config: the sweep file's base (thumbnails_cnn.yaml); --set wins over the sweep file's budget
    tiny = [
        "trainer.max_epochs=1",
        "data.size=16",
        "model.width=4",
        "trainer.progress=none",
        f"output_dir={tmp_path}",
    ]
    args = ["study", "constancy", "--data", str(synth), "--folds", "2", "--out", str(tmp_path / "study"),
            "--pretrain-epochs", "1", "--no-baselines"]  # fmt: skip
    for o in tiny:
        args += ["--set", o]
    assert main(args) == 0
    lines = [x for x in (tmp_path / "study" / "study.md").read_text().splitlines() if x.startswith("|")]
    assert (
        lines[0] == "| Type | Epochs | Mean | Median | Trimean | Worst25 | Best25 | Seed mean | Seed median |"
    )
    assert len(lines) == 2 + 6
    assert (tmp_path / "study" / "figures" / "error_cdf.png").is_file()
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["base_config"]["name"] == "thumbnails-cnn" and saved["base_config"]["model"]["width"] == 4
    assert {v["epochs"] for v in saved["variants"].values()} == {1}


def test_parser_camera_names_match_the_spectral_data() -> None:
    from tinct.cli.constancy import CAMERA_NAMES
    from tinct.spectral.formation import CAMERAS

    assert CAMERA_NAMES == CAMERAS


def test_colorize_starts_without_lightning_or_colour_science() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tinct.cli.main import build_parser; build_parser();"
        "from tinct.colorization.colorize import load_colorizer; load_colorizer();"
        "bad = [m for m in ('lightning', 'colour') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
