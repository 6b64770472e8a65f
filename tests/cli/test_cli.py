import subprocess
import sys

import yaml

from tinct.cli.main import main


def test_train_evaluate_predict_via_cli(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "task": "illuminant",
                "name": "cli",
                "output_dir": str(tmp_path / "runs"),
                "data": {"n_train": 32, "n_val": 16, "n_test": 16, "size": 16, "batch_size": 16},
                "model": {"width": 4, "depth": 2},
            }
        )
    )
    assert (
        main(
            [
                "train",
                str(cfg),
                "--set",
                "trainer.max_epochs=1",
                "--set",
                "trainer.progress=none",
                "--run-dir",
                str(tmp_path / "run"),
                "--accelerator",
                "cpu",
                "--devices",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "tinct illuminant/cli: 1 epochs" in out
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert "test/angular_mean" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "run"), "--set", "trainer.max_epochs=2"]) == 0
    import numpy as np

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 20, 3), dtype=np.float32))
    assert (
        main(["predict", str(tmp_path / "run"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p")]) == 0
    )
    assert "r=" in capsys.readouterr().out


def test_clear_errors_exit_2(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: illuminant\n")
    assert main(["train", str(cfg), "--set", "model.backbone=resnet9000"]) == 2
    # backbone names are validated when the model is built
    err = capsys.readouterr().err
    assert "unknown backbone 'resnet9000'" in err and "mobilenet_v2" in err
    assert main(["train", str(cfg), "--set", "optim.lr=-1"]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "not a tinct run directory" in capsys.readouterr().err


def test_console_script_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tinct", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for cmd in ("quickstart", "train", "evaluate", "predict"):
        assert cmd in out
