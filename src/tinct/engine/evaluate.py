"""``evaluate(run_dir, data=...)`` and ``predict(run_dir, inputs)``: the functions behind the CLI."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.exceptions import DataError, RunDirError
from tinct.engine.run_dir import RunDir
from tinct.io.image import IMAGE_SUFFIXES

__all__ = ["evaluate", "expand_inputs", "load_task", "predict"]


def load_task(
    run_dir: str | os.PathLike[str], checkpoint: str = "best", overrides: dict[str, Any] | None = None
) -> Any:
    """Rebuild a run's task from its ``config.yaml`` and load its ``best`` (or ``last``) weights safely."""
    from tinct.engine.task import TASKS

    run = RunDir(run_dir)
    cfg = run.config(overrides)
    task = TASKS.get(cfg.task)(cfg)
    path = run.checkpoint(checkpoint)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunDirError(f"{path}: cannot load checkpoint ({err})") from err
    task.load_state_dict(state["state_dict"])
    task.eval()
    return task


def evaluate(
    run_dir: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str = "best",
    accelerator: str = "cpu",
    devices: int | str = 1,
    out: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """Test a trained run on its own test split, or on every image of the folder ``data``.

    Writes ``evaluation.json`` (or ``evaluation-<folder>.json``) into the run directory, or to ``out``, and
    the task's own report files (:meth:`tinct.engine.task.Task.write_test_report`; patch colour:
    ``patch_metrics.json``, ``patch_predictions.csv``, ``figures/patch_swatches.png``) into the run directory
    (own test split), ``RUN_DIR/eval-<folder>`` (``data``) or the folder of ``out``.
    """
    from tinct.engine.train import build_trainer

    task = load_task(run_dir, checkpoint)
    if data is not None:
        if not Path(data).is_dir():
            raise DataError(f"{data}: evaluation data folder not found")
        task.cfg = task.with_data(data)
    trainer = build_trainer(task.cfg, None, [], accelerator=accelerator, devices=devices)
    with warnings.catch_warnings():
        # Lightning 2.6 calls a torch API that torch 2.14 deprecated; nothing for users to act on.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        results = trainer.test(task, datamodule=task.build_datamodule(), verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    target = (
        Path(out)
        if out
        else Path(run_dir) / ("evaluation.json" if data is None else f"evaluation-{Path(data).name}.json")
    )
    # Task files (patch: patch_metrics.json ...) go to the run directory for its own test split, to
    # RUN_DIR/eval-<folder> for another data folder, or beside --out.
    report_dir = (
        target.parent if out else Path(run_dir) / ("." if data is None else f"eval-{Path(data).name}")
    )
    task.write_test_report(report_dir.resolve(), str(data) if data else "test split")
    atomic_write_json(
        target, {"run_dir": str(run_dir), "data": str(data) if data else "test split", **metrics}
    )
    return metrics


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, folders expanded recursively to their image files (sorted)."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        elif p.is_file():
            paths.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return paths


def predict(
    run_dir: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str = "best",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run a trained task on image files; write ``predictions.csv`` (and the task's outputs) to ``out_dir``.

    A file that cannot be read is reported by name and recorded with its error; the others still run.
    """
    from rich.progress import track

    task = load_task(run_dir, checkpoint)
    out = Path(out_dir) if out_dir else Path(run_dir) / "predictions"
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_inputs(inputs)
    if not paths:
        raise DataError(
            f"no image files among {', '.join(map(str, inputs))} (supported: {', '.join(IMAGE_SUFFIXES)})"
        )
    rows: list[dict[str, Any]] = []

    import pandas as pd

    def save() -> None:
        atomic_write_text(out / "predictions.csv", pd.DataFrame(rows).to_csv(index=False))

    # The table is rewritten every few seconds and once at the end (also on an exception), so a long
    # job keeps its finished rows without rewriting a growing file after every image.
    last_save = time.monotonic()
    iterator = track(paths, description="predicting", disable=not progress or not sys.stderr.isatty())
    try:
        for path in iterator:
            try:
                rows += task.predict_files([path], out)
            except DataError as err:
                print(f"tinct: skipped {err}", file=sys.stderr)
                rows.append({"image": str(path), "error": str(err)})
            if time.monotonic() - last_save > 5.0:
                save()
                last_save = time.monotonic()
    finally:
        if rows:
            save()
    return rows
