"""The HTML / Markdown report, on run, study and sweep folders written by hand (no training)."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tinct.core.exceptions import RunDirError, UnknownNameError
from tinct.engine.report import write_report

CONSTANCY_HEADER = ["Type", "Epochs", "Mean", "Median", "Trimean", "Worst25", "Best25"]
# the report's task table: the validation column that ranks the rows, then the study's columns
TASK_HEADER = ["Type", "Epochs", "val Mean", "Mean", "Median", "Trimean", "Worst25", "Best25"]
STATS = ("mean", "median", "trimean", "best25", "worst25", "max")
FACTORS = (1.0, 0.8, 0.9, 0.3, 2.0, 4.0)  # of the mean, per statistic


def angular(mean: float, split: str = "val") -> dict[str, float]:
    return {f"{split}/angular_{s}": mean * f for s, f in zip(STATS, FACTORS, strict=True)}


def write_run(
    path: Path,
    task: str = "illuminant",
    name: str = "run",
    metrics: dict[str, Any] | None = None,
    epochs: int = 4,
    trial: dict[str, Any] | None = None,
    backbone: str = "small_cnn",
    lr: float = 0.01,
) -> Path:
    """A run directory as ``tinct train`` leaves it; ``metrics=None`` leaves it unfinished."""
    path.mkdir(parents=True, exist_ok=True)
    model = {"arch": "eccv16"} if task == "colorization" else {"backbone": backbone}
    cfg = {"task": task, "name": name, "seed": 0, "output_dir": "runs", "data": {"kind": "synthetic"}}
    cfg |= {"model": model, "optim": {"lr": lr}, "trainer": {"max_epochs": epochs}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (path / "env.json").write_text(json.dumps({"started": "2026-01-01T00:00:00"}))
    monitor = "val/auc_rebalanced" if task == "colorization" else "val/angular_mean"
    last = (metrics or {}).get(monitor, 3.0)
    curve = [{"epoch": e, "train/loss": 1.0, monitor: last + epochs - 1 - e} for e in range(epochs)]
    pd.DataFrame(curve).to_csv(path / "metrics.csv", index=False)
    if metrics is not None:
        done = {**metrics, "best_epoch": epochs - 1, "epochs": epochs, "train_time_s": 60.0}
        (path / "metrics.json").write_text(json.dumps(done))
    if trial is not None:
        (path / "trial.json").write_text(json.dumps(trial))
    return path


def write_png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (200, 30, 30)).save(path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "cnn", name="cnn", metrics={**angular(3.0), **angular(3.5, "test")})
    write_run(root / "bold", name="<b>x</b>", backbone="mobilenet_v2", metrics=angular(2.0), epochs=6)
    write_run(root / "crashed", name="crashed")
    write_run(
        root / "color",
        task="colorization",
        name="eccv16",
        metrics={"val/auc_rebalanced": 0.8, "val/psnr": 22.0, "test/auc_rebalanced": 0.75, "test/psnr": 21.5},
    )
    # a sweep folder: its file, results, winners and trial runs
    sweep = root / "lr-sweep"
    sweep.mkdir()
    spec = {
        "name": "lr-sweep",
        "metric": "val/angular_mean",
        "direction": "minimize",
        "axes": {"lr": [0.1, 0.01, 1.0]},
    }
    (sweep / "sweep.yaml").write_text(yaml.safe_dump(spec))
    rows = []
    for k, lr in enumerate((0.1, 0.01)):
        run = write_run(
            sweep / "runs" / f"trial-{k}",
            name="cnn",
            lr=lr,
            metrics=angular(4.0 - k),
            trial={"sweep": "lr-sweep", "number": k, "params": {"lr": lr}, "state": "COMPLETE"},
        )
        rows.append([k, "COMPLETE", False, lr, 4.0 - k, 4, 1.0, str(run), ""])
    rows.append([2, "FAIL", False, 1.0, None, None, 0.2, "", "RuntimeError: loss is <nan>"])
    # the columns of tinct.engine.sweep.sweep_results
    columns = [
        "number",
        "state",
        "optional",
        "lr",
        "val/angular_mean",
        "epochs",
        "time_s",
        "run_dir",
        "error",
    ]
    pd.DataFrame(rows, columns=columns).to_csv(sweep / "results.csv", index=False)
    pd.DataFrame(
        {
            "rank": [1],
            "number": [1],
            "run_dir": [rows[1][7]],
            "val/angular_mean": [3.0],
            "test/angular_mean": [3.1],
        }
    ).to_csv(sweep / "winners.csv", index=False)
    # a constancy study folder
    study = root / "study"
    study.mkdir()
    pd.DataFrame(
        [
            ["linear, supervised", "10", 2.345, 1.5, 1.75, 5.0, 0.5],
            ["Gray World", "-", 6.0, 5.0, 5.5, 12.0, 1.0],
        ],
        columns=CONSTANCY_HEADER,
    ).to_csv(study / "study.csv", index=False)
    (study / "study.md").write_text("# Constancy study\n\nsynthetic data\n\n| Type | Epochs |\n|---|---|\n")
    write_png(study / "figures" / "error_cdf.png")
    return root


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts (the header row first), and every src / href."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.refs: list[tuple[str, str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [(k, v or "") for k, v in attrs if k in {"src", "href"}]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Tables:
    p = _Tables()
    p.feed(text)
    return p


def _table(page: _Tables, header: list[str]) -> list[list[str]]:
    found = [t for t in page.tables if t and t[0] == header]
    assert found, f"no table with header {header}"
    return found[0][1:]


def test_html_report_is_one_self_contained_file(tree: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out = write_report(tree, out_dir / "report.html")
    assert out == out_dir / "report.html"
    assert [p.name for p in out_dir.iterdir()] == ["report.html"]
    text = out.read_text()
    page = _parse(text)
    assert "data:image/png;base64," in text
    assert 'src="http' not in text and "<script" not in text and "<link" not in text
    assert page.refs and all(k == "src" and v.startswith("data:image/png;base64,") for k, v in page.refs)
    # header: runs per task and status
    overview = _table(page, ["task", "finished", "unfinished", "runs"])
    assert ["illuminant", "4", "1", "5"] in overview and ["all", "5", "1", "6"] in overview


def test_html_constancy_table(tree: Path, tmp_path: Path) -> None:
    page = _parse(write_report(tree, tmp_path / "report.html").read_text())
    rows = _table(page, TASK_HEADER)
    # best (lowest validation mean) first, that value beside the statistics: test statistics when the run
    # has them, else validation; 2 decimals; ties (cnn and lr=0.01 at 3.0) by path
    assert rows[0] == ["<b>x</b>", "6", "2.00", "2.00", "1.60", "1.80", "4.00", "0.60"]
    assert rows[1] == ["cnn", "4", "3.00", "3.50", "2.80", "3.15", "7.00", "1.05"]
    assert rows[2][0] == "lr=0.01" and rows[2][2:4] == ["3.00", "3.00"]  # a trial: named by its parameters
    assert rows[3][0] == "lr=0.1" and rows[3][2:4] == ["4.00", "4.00"]
    assert len(rows) == 4  # the unfinished run has no numbers


def test_task_table_ranks_on_validation_not_test(tmp_path: Path) -> None:
    # the validation-best run is the test-worst: the table must not reorder by the test numbers
    root = tmp_path / "runs"
    write_run(root / "a", name="val-best", metrics={**angular(2.0), **angular(5.0, "test")})
    write_run(root / "b", name="test-best", metrics={**angular(3.0), **angular(1.0, "test")})
    write_run(root / "c", name="no-val", metrics=angular(0.5, "test"))  # ranks nothing: listed last
    text = write_report(root, tmp_path / "report.html").read_text()
    page = _parse(text)
    task_tables = [t for t in page.tables if t and t[0][:2] == ["Type", "Epochs"]]
    assert [r[0] for r in task_tables[0][1:]] == ["val-best", "test-best", "no-val"]
    rows = _table(page, TASK_HEADER)
    assert [r[2:4] for r in rows] == [["2.00", "5.00"], ["3.00", "1.00"], ["-", "0.50"]]
    assert "ranked by val Mean (validation split" in text and "then the 1 run without it" in text


def test_html_other_tables(tree: Path, tmp_path: Path) -> None:
    text = write_report(tree, tmp_path / "report.html", title="my & report").read_text()
    page = _parse(text)
    color = _table(
        page, ["Model", "Epochs", "val AuC rebalanced", "AuC raw", "AuC rebalanced", "PSNR", "Colourfulness"]
    )
    assert color == [["eccv16", "4", "80.00", "-", "75.00", "21.50", "-"]]  # AuC in %
    studies = [t for t in page.tables if t and t[0] == CONSTANCY_HEADER]
    assert ["linear, supervised", "10", "2.35", "1.50", "1.75", "5.00", "0.50"] in studies[-1]
    header = ["run", "name", "status", "param:lr", "model.backbone", "optim.lr", "trainer.max_epochs"]
    runs = _table(page, [*header, "val/angular_mean", "test/angular_mean", "epochs", "time (s)"])
    # by val/angular_mean, best first (cnn and trial-1 tie at 3.0: by path), unfinished last
    assert [r[0] for r in runs] == [
        "bold",
        "cnn",
        "lr-sweep/runs/trial-1",
        "lr-sweep/runs/trial-0",
        "crashed",
    ]
    trials = _table(page, ["number", "state", "lr", "val/angular_mean", "time_s"])
    assert [r[1] for r in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert "COMPLETE 2, FAIL 1" in text
    failed = _table(page, ["number", "state", "error"])
    assert failed == [["2", "FAIL", "RuntimeError: loss is <nan>"]]
    winners = _table(page, ["rank", "number", "run_dir", "val/angular_mean", "test/angular_mean"])
    assert winners[0][0] == "1"
    assert "<title>my &amp; report</title>" in text


def test_html_escapes_names(tree: Path, tmp_path: Path) -> None:
    text = write_report(tree, tmp_path / "report.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "<b>x</b>" not in text
    assert "loss is &lt;nan&gt;" in text


def test_markdown_report_links_its_figures(tree: Path, tmp_path: Path) -> None:
    out = write_report(tree, tmp_path / "md" / "summary.md", fmt="md")
    text = out.read_text()
    assert "| Type | Epochs | Mean | Median | Trimean | Worst25 | Best25 |" in text
    assert "| &lt;b&gt;x&lt;/b&gt; | 6 | 2.00 | 2.00 | 1.60 | 1.80 | 4.00 | 0.60 |" in text
    assert "<b>" not in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any("learning_curves.png" in link for link in links)
    assert any("error_cdf.png" in link for link in links)  # the study's figure, copied beside the report
    for link in links:
        assert not link.startswith(("/", "http"))
        assert link.startswith("summary_figures/")
        assert (out.parent / link).is_file()


def test_report_arguments(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="'html', 'md'"):
        write_report(tree, tmp_path / "r.pdf", fmt="pdf")
    with pytest.raises(RunDirError, match="no such folder"):
        write_report(tmp_path / "missing", tmp_path / "r.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No run directories found" in write_report(empty, tmp_path / "e.html").read_text()


def test_report_of_100_runs(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for k in range(100):
        backbone = ("small_cnn", "mobilenet_v2", "resnet18")[k % 3]
        write_run(
            root / f"run{k:03d}",
            name=f"run{k}",
            backbone=backbone,
            lr=(0.1, 0.01, 0.001, 0.0001)[k % 4],
            metrics={**angular(2.0 + (k % 7) * 0.1), **angular(2.5 + (k % 5) * 0.1, "test")},
            epochs=30,
        )
    t = time.perf_counter()
    out = write_report(root, tmp_path / "many.html")
    seconds = time.perf_counter() - t
    print(f"write_report on 100 runs: {seconds:.2f} s")
    assert len(_table(_parse(out.read_text()), TASK_HEADER)) == 100
    assert seconds < 60
