"""Run summaries and their figures, on run directories written by hand (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tinct.core.exceptions import DataError, RunDirError, UnknownNameError
from tinct.engine.results_plots import plot_results
from tinct.engine.summary import find_runs, summarize_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STATS = ("mean", "median", "trimean", "best25", "worst25", "max")


def write_run(
    path: Path,
    task: str = "illuminant",
    name: str = "run",
    model: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    epochs: int = 3,
    trial: dict[str, Any] | None = None,
    started: str = "2026-01-01T00:00:00",
    lr: float = 0.01,
    rows: int | None = None,
) -> Path:
    """A run directory as ``tinct train`` leaves it; ``metrics=None`` leaves it unfinished (after ``rows``
    epochs of ``epochs``)."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = {
        "task": task,
        "name": name,
        "seed": 0,
        "output_dir": str(path.parent),
        "data": {"kind": "synthetic", "batch_size": 16},
        "model": model or {"backbone": "small_cnn", "width": 8},
        "optim": {"name": "adamw", "lr": lr},
        "trainer": {"max_epochs": epochs},
    }
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (path / "env.json").write_text(json.dumps({"git_commit": "abc", "versions": {}, "started": started}))
    monitor = "val/auc_rebalanced" if task == "colorization" else "val/angular_mean"
    final = (metrics or {}).get(monitor, 5.0)
    rows = [
        {"epoch": e, "step": 10 * (e + 1), "train/loss": 1.0 / (e + 1), monitor: final + (epochs - 1 - e)}
        for e in range(epochs if rows is None else rows)
    ]
    pd.DataFrame(rows).to_csv(path / "metrics.csv", index=False)
    if metrics is not None:
        full = {**metrics, "best_epoch": epochs - 1, "epochs": epochs, "train_time_s": 12.5}
        (path / "metrics.json").write_text(json.dumps(full))
    if trial is not None:
        (path / "trial.json").write_text(json.dumps(trial))
    return path


def angular(mean: float, split: str = "val") -> dict[str, float]:
    return {
        f"{split}/angular_{s}": mean * f for s, f in zip(STATS, (1.0, 0.8, 0.9, 0.3, 2.0, 4.0), strict=True)
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "cnn", name="cnn", metrics={**angular(3.0), **angular(3.5, "test")})
    write_run(
        root / "mobilenet",
        name="mnet",
        model={"backbone": "mobilenet_v2", "width": 8},
        metrics=angular(2.0),
        started="2026-01-02T00:00:00",
    )
    write_run(root / "crashed", name="cnn", rows=2)  # unfinished: no metrics.json
    write_run(
        root / "color",
        task="colorization",
        name="eccv16",
        model={"arch": "eccv16", "head": "classification"},
        metrics={"val/auc_rebalanced": 0.8, "val/loss": 3.0, "test/auc_rebalanced": 0.75},
    )
    for k, lr in enumerate((0.1, 0.01)):
        write_run(
            root / "sweep" / "runs" / f"trial-{k}",
            name="cnn",
            lr=lr,
            metrics=angular(4.0 - k),
            trial={"sweep": "lr-sweep", "number": k, "params": {"lr": lr}, "state": "COMPLETE"},
        )
    # not runs: a checkpoint folder's config and a hidden folder
    (root / "cnn" / "checkpoints").mkdir()
    (root / "cnn" / "checkpoints" / "config.yaml").write_text("task: illuminant\n")
    (root / ".trash" / "old").mkdir(parents=True)
    (root / ".trash" / "old" / "config.yaml").write_text("task: illuminant\n")
    return root


def test_find_runs_prunes_and_sorts_numbers_numerically(tree: Path) -> None:
    for k in (10, 2):
        write_run(tree / "cv" / f"fold{k}", metrics=angular(1.0))
    rel = [p.relative_to(tree).as_posix() for p in find_runs(tree)]
    assert rel == [
        "cnn",
        "color",
        "crashed",
        "cv/fold2",
        "cv/fold10",
        "mobilenet",
        "sweep/runs/trial-0",
        "sweep/runs/trial-1",
    ]
    assert find_runs(tree / "cnn") == [tree / "cnn"]  # the root itself is a run


def test_find_runs_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such folder"):
        find_runs(tmp_path / "nope")


def test_summarize_rows_and_columns(tree: Path) -> None:
    df = summarize_runs(tree)
    assert list(df["run"]) == [
        "cnn",
        "color",
        "crashed",
        "mobilenet",
        "sweep/runs/trial-0",
        "sweep/runs/trial-1",
    ]
    cols = list(df.columns)
    assert cols[:8] == ["run", "task", "name", "status", "epochs", "best_epoch", "train_time_s", "started"]
    assert cols[8:12] == ["sweep", "trial", "trial_state", "param:lr"]
    metric_cols = [c for c in cols if c.startswith(("val/", "test/"))]
    assert metric_cols == sorted(c for c in metric_cols if c.startswith("val/")) + sorted(
        c for c in metric_cols if c.startswith("test/")
    )
    assert metric_cols.index("val/angular_mean") < metric_cols.index("test/angular_mean")
    by = df.set_index("run")
    assert by.loc["cnn", "status"] == "finished"
    assert by.loc["crashed", "status"] == "unfinished"
    assert by.loc["crashed", "epochs"] == 2  # rows of metrics.csv
    assert pd.isna(by.loc["crashed", "val/angular_mean"])
    assert by.loc["mobilenet", "val/angular_mean"] == pytest.approx(2.0)
    assert by.loc["cnn", "test/angular_worst25"] == pytest.approx(3.5 * 2.0)
    assert by.loc["color", "test/auc_rebalanced"] == pytest.approx(0.75)
    assert by.loc["mobilenet", "started"] == "2026-01-02T00:00:00"
    assert by.loc["cnn", "best_epoch"] == 2 and by.loc["cnn", "train_time_s"] == pytest.approx(12.5)
    assert by.loc["sweep/runs/trial-1", "param:lr"] == pytest.approx(0.01)
    assert by.loc["sweep/runs/trial-1", "trial"] == 1
    assert by.loc["sweep/runs/trial-0", "sweep"] == "lr-sweep"
    assert pd.isna(by.loc["cnn", "sweep"])


def test_only_varying_config_columns(tree: Path) -> None:
    df = summarize_runs(tree)
    config = [c for c in df.columns if "." in c and "/" not in c]
    # backbone and arch differ (arch is missing from the illuminant runs), lr differs in the sweep
    for key in ("model.backbone", "model.arch", "model.head", "optim.lr", "model.width"):
        assert key in config
    for constant in ("seed", "data.kind", "data.batch_size", "optim.name", "trainer.max_epochs"):
        assert constant not in df.columns
    assert "output_dir" not in df.columns  # differs, but is where the run was written, not what it is
    assert df.set_index("run").loc["mobilenet", "model.backbone"] == "mobilenet_v2"


def test_single_run_has_no_config_columns(tree: Path) -> None:
    df = summarize_runs(tree / "cnn")
    assert list(df["run"]) == ["."]
    assert not [c for c in df.columns if "." in c and "/" not in c]


def test_empty_folder_gives_empty_table(tmp_path: Path) -> None:
    df = summarize_runs(tmp_path)
    assert df.empty and list(df.columns)[:3] == ["run", "task", "name"]


def test_csv_written_and_read_back(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "summary.csv"
    df = summarize_runs(tree, out=out)
    back = pd.read_csv(out)
    assert list(back.columns) == list(df.columns)
    assert back["val/angular_mean"].tolist() == pytest.approx(df["val/angular_mean"].tolist(), nan_ok=True)


@pytest.mark.parametrize("bad", ["metrics.json", "config.yaml", "env.json", "trial.json"])
def test_unreadable_file_is_named(tree: Path, bad: str) -> None:
    path = tree / "sweep" / "runs" / "trial-0" / bad
    path.write_text("{not: [valid" if bad.endswith(".yaml") else '{"val/angular_mean": 1.0,')
    with pytest.raises(RunDirError, match=str(path)):
        summarize_runs(tree)


def test_every_task_declares_a_monitor_its_table_shows() -> None:
    from tinct.engine.summary import task_monitor
    from tinct.engine.task import TASKS

    assert TASKS.names()
    for name in TASKS.names():
        cls = TASKS.get(name)
        assert cls.monitor.startswith("val/") and cls.monitor_mode in {"min", "max"}, name
        assert task_monitor(name) == (cls.monitor, cls.monitor_mode)
        table = cls.report_table
        if table is None:
            continue
        metrics = [c.metric for c in table.columns]
        headers = [table.first, "Epochs", *(c.header for c in table.columns)]
        assert metrics and len(set(headers)) == len(headers), name
        assert not any(m.startswith(("val/", "test/")) for m in metrics), name
        assert cls.monitor.removeprefix("val/") in metrics, (
            f"{name}: the table is sorted by a metric it hides"
        )
    assert task_monitor("not_installed") == task_monitor(None) == ("val/loss", "min")


def _is_png(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    return path.read_bytes()[:8] == PNG_MAGIC


def test_plot_results_figures(tree: Path, tmp_path: Path) -> None:
    for k in range(2):  # a cross-validation: per-image errors in each fold
        fold = write_run(tree / "cv" / f"fold{k}", name="cv", metrics=angular(2.5 + k))
        pd.DataFrame({"image": ["a", "b", "c"], "fold": k, "error": [1.0, 2.0, 3.0 + k]}).to_csv(
            fold / "errors.csv", index=False
        )
    df = summarize_runs(tree)
    out = tmp_path / "figs"
    paths = plot_results(df, out, root=tree)
    names = {p.name for p in paths}
    assert {"learning_curves.png", "error_distribution.png", "metric_by_param_lr.png"} <= names
    assert "metric_by_model.backbone.png" in names
    assert all(p.parent == out and _is_png(p) for p in paths)


def test_plot_results_from_the_csv_file(tree: Path) -> None:
    csv = summarize_runs(tree, out=tree / "summary.csv")
    assert not csv.empty
    paths = plot_results(tree / "summary.csv", tree / "figs", metric="val/angular_mean")
    assert "learning_curves.png" in {p.name for p in paths}  # run paths relative to the CSV's folder


def test_plot_results_of_a_sweep_results_csv(tree: Path, tmp_path: Path) -> None:
    trials = sorted((tree / "sweep" / "runs").iterdir())
    results = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["COMPLETE", "COMPLETE", "FAIL"],
            "run_dir": [str(trials[0]), str(trials[1]), ""],
            "lr": [0.1, 0.01, 0.001],
            "val/angular_mean": [4.0, 3.0, None],
            "time_s": [1.0, 2.0, 0.1],
            "error": [None, None, "RuntimeError: boom"],
        }
    )
    results.to_csv(tmp_path / "results.csv", index=False)
    paths = plot_results(tmp_path / "results.csv", tmp_path / "figs")
    assert {p.name for p in paths} == {"metric_by_lr.png", "learning_curves.png", "error_distribution.png"}
    only = plot_results(results, tmp_path / "figs2", kinds=("metric_by",))
    assert [p.name for p in only] == ["metric_by_lr.png"]


def test_plot_results_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such results file"):
        plot_results(tmp_path / "missing.csv", tmp_path)
    (tmp_path / "r.csv").write_text("run,name\na,b\n")
    with pytest.raises(DataError, match="no metric columns"):
        plot_results(tmp_path / "r.csv", tmp_path)
    (tmp_path / "r.csv").write_text("run,val/loss\na,1.0\n")
    with pytest.raises(DataError, match="valid choices: val/loss"):
        plot_results(tmp_path / "r.csv", tmp_path, metric="val/psnr")
    with pytest.raises(UnknownNameError):
        plot_results(tmp_path / "r.csv", tmp_path, kinds=("pie",))


def test_corrupt_metrics_csv_is_named(tree: Path, tmp_path: Path) -> None:
    bad = tree / "cnn" / "metrics.csv"
    bad.write_bytes(b'epoch,val/angular_mean\n0,1.0\n\x00\xff\xfe,"unterminated\n')
    with pytest.raises(DataError, match=str(bad)):
        plot_results(summarize_runs(tree), tmp_path / "figs", root=tree, kinds=("learning_curves",))


def test_learning_curves_mark_the_best_run_on_validation(tmp_path: Path, monkeypatch) -> None:
    # asked for a test metric, the run drawn as best is still chosen on validation
    from tinct.engine import results_plots

    root = tmp_path / "runs"
    write_run(root / "val-best", metrics={**angular(2.0), **angular(5.0, "test")})
    write_run(root / "test-best", metrics={**angular(3.0), **angular(1.0, "test")})
    drawn: dict[str, list[tuple[str, str]]] = {}

    def keep(fig: Any, out: Path) -> Path:
        lines = fig.axes[0].get_lines()
        drawn[Path(out).name] = [(str(line.get_label()), str(line.get_color())) for line in lines]
        return Path(out)

    monkeypatch.setattr(results_plots, "_save", keep)
    plot_results(summarize_runs(root), tmp_path / "figs", metric="test/angular_mean", root=root)
    black = [label for label, colour in drawn["learning_curves.png"] if colour == "k"]
    assert black == ["best on validation: val-best"]
