"""``evaluate(run_dir, data=...)`` and ``predict(run_dir, inputs)``: the functions behind the CLI."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.checks import check_device
from tinct.core.exceptions import ConfigError, DataError, some_of
from tinct.core.naming import collect_inputs, unique_output_names
from tinct.engine.run_dir import RunDir, checkpoint_mismatches, read_checkpoint
from tinct.io.image import IMAGE_SUFFIXES

__all__ = ["evaluate", "expand_inputs", "load_task", "predict"]


def load_task(
    run_dir: str | os.PathLike[str], checkpoint: str = "best", overrides: dict[str, Any] | None = None
) -> Any:
    """Rebuild a run's task from its ``config.yaml`` and load its ``best`` (or ``last``) weights safely.

    Raises:
        RunDirError: no ``config.yaml`` or no checkpoint, or the checkpoint is truncated or not one.
        ConfigError: ``config.yaml`` is broken (named), or it (with ``overrides``) builds another network
            than the checkpoint holds (the first mismatching parameters named).
    """
    from tinct.engine.task import TASKS

    run = RunDir(run_dir)
    cfg = run.config(overrides)
    task = TASKS.get(cfg.task)(cfg)
    path = run.checkpoint(checkpoint)
    state = read_checkpoint(path)["state_dict"]
    problems = checkpoint_mismatches(task, state)
    if problems:
        with_overrides = f" with {', '.join(overrides)}" if overrides else ""
        raise ConfigError(
            f"{path} does not fit the network of {run.config_file}{with_overrides}: "
            + some_of(problems, 3, sep="; ")
        )
    task.load_state_dict(state)
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


def expand_inputs(
    inputs: Sequence[str | os.PathLike[str]], suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[Path]:
    """Files as given, folders expanded recursively to their files of ``suffixes`` (sorted; a task's
    ``input_suffixes``, e.g. the illuminant task's image and camera raw files).

    Raises:
        DataError: an input does not exist (named).
    """
    paths, _, missing = collect_inputs(inputs, tuple(suffixes))
    if missing:
        raise DataError(f"{missing[0]}: no such file or folder")
    return paths


def predict(
    run_dir: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str = "best",
    progress: bool = True,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Run a trained task on image files; write ``predictions.csv`` (and the task's outputs) to ``out_dir``.

    Output files are named by :func:`tinct.core.naming.unique_output_names`: a folder argument's
    sub-folders are kept, and inputs whose stems collide keep their extension (``a_png_balanced.png``,
    ``a_npy_balanced.png``), so no output overwrites another. An input that does not exist or a file that
    cannot be read is reported by name on stderr (``tinct: skipped a.png: ...``) and recorded as a row
    with an ``error``; the others still run.

    Args:
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); see :func:`tinct.core.checks.check_device`.

    Returns:
        One row per input file (and per missing input), as in ``predictions.csv``; rows with an ``error``
        key failed.

    Raises:
        DataError: no input holds an image file.
    """
    from rich.progress import track

    task = load_task(run_dir, checkpoint).to(check_device(device))
    out = Path(out_dir) if out_dir else Path(run_dir) / "predictions"
    paths, roots, missing = collect_inputs(inputs, task.input_suffixes)
    supported = f"supported: {', '.join(task.input_suffixes)}"
    found_under = set(roots)
    for item in inputs:
        if Path(item).is_dir() and Path(item) not in found_under:
            print(f"tinct: {item}: no image files ({supported})", file=sys.stderr)
    if not paths:
        absent = f"; {', '.join(missing)}: no such file or folder" if missing else ""
        raise DataError(f"no image files among {', '.join(map(str, inputs))} ({supported}){absent}")
    out.mkdir(parents=True, exist_ok=True)
    names = unique_output_names(paths, roots)
    rows: list[dict[str, Any]] = []
    for item in missing:
        print(f"tinct: skipped {item}: no such file or folder", file=sys.stderr)
        rows.append({"image": item, "error": f"{item}: no such file or folder"})

    import pandas as pd

    def save() -> None:
        atomic_write_text(out / "predictions.csv", pd.DataFrame(rows).to_csv(index=False))

    # The table is rewritten every few seconds and once at the end (also on an exception), so a long
    # job keeps its finished rows without rewriting a growing file after every image.
    last_save = time.monotonic()
    jobs = list(zip(paths, names, strict=True))
    iterator = track(jobs, description="predicting", disable=not progress or not sys.stderr.isatty())
    try:
        for path, name in iterator:
            try:
                rows += task.predict_files([path], out, names=[name])
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
