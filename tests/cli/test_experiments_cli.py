"""``tinct sweep`` / ``summarize`` / ``plot`` / ``report`` from the command line, on one tiny sweep."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from tinct.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_sweep_then_summarize_plot_and_report(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "lr.sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "base": str(REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml"),
                "set": {"data.n_train": 32, "data.n_val": 16, "data.n_test": 16, "model.width": 4},
                "axes": {"optim.lr": [0.003, 0.01]},
            }
        )
    )
    out = tmp_path / "sweep"
    argv = ["sweep", str(sweep), "--out", str(out), "--set", "trainer.max_epochs=1", "--auto-summary"]
    assert main([*argv, "--analysis", "--eval-winners", "1", "--test-split", "auto"]) == 0
    printed = capsys.readouterr().out
    assert "sweep lr: 2 trials (0 done, 2 new" in printed and "sweep lr: 2 complete" in printed
    assert (out / "split.json").is_file() and (out / "figures" / "metric_by_optim.lr.png").is_file()
    assert len(pd.read_csv(out / "winners.csv")) == 1
    assert main(argv) == 0  # resumed: nothing left to do
    assert "(2 done, 0 new" in capsys.readouterr().out

    assert main(["summarize", str(out), "--out", str(tmp_path / "all.csv")]) == 0
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == 2 and set(table["status"]) == {"finished"} and "optim.lr" in table
    assert main(["plot", str(tmp_path / "all.csv"), "--out", str(tmp_path / "figs"), "--root", str(out)]) == 0
    assert (tmp_path / "figs" / "learning_curves.png").is_file()
    assert main(["report", str(out), "--out", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "<th>Type</th>" in html and "data:image/png;base64," in html
    assert main(["report", str(out), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "| Type | Epochs | val Mean | Mean | Median | Trimean | Worst25 | Best25 |" in md


def test_bad_inputs_exit_2_with_the_file_named(tmp_path: Path, capsys) -> None:
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: sweep file not found" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: no such results file" in capsys.readouterr().err
    assert main(["summarize", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "nothing" in capsys.readouterr().err
