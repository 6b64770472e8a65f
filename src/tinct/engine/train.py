"""``train(cfg) -> metrics``: the plain function behind ``tinct train`` (tests call it directly)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tinct.core.atomic import atomic_write_json
from tinct.core.checks import check_inside
from tinct.core.config import ExperimentConfig, TrainerConfig
from tinct.core.exceptions import ConfigError, RunDirError, TinctError, some_of
from tinct.engine.plots import plot_learning_curves
from tinct.engine.run_dir import (
    RunDir,
    checkpoint_mismatches,
    config_changes,
    new_run_path,
    read_checkpoint,
)

if TYPE_CHECKING:  # Lightning is imported when training starts, not by commands that only predict
    import lightning as L

__all__ = ["build_trainer", "check_resumable", "check_trainer_settings", "resolve_run_dir", "train"]

# Settings a resumed run may change: they leave its network (and so its checkpoint) as it is.
SAFE_ON_RESUME = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.progress",
    "data.num_workers",
)


def resolve_run_dir(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str] | None, num_nodes: int | None = None
) -> Path:
    """Pick the run directory so that every process of a distributed run agrees on it.

    Order: the explicit ``run_dir``; ``$TINCT_RUN_DIR`` (set by rank 0 before Lightning spawns its DDP
    workers, which re-run the same command); when this is one of several processes (torchrun's
    ``WORLD_SIZE``, SLURM's ``SLURM_NTASKS``, or several nodes) a name derived from the job id
    (``$SLURM_JOB_ID``, plus the step id of an ``srun`` step; torchrun's ``--rdzv-id``); otherwise
    ``<output_dir>/<name>-<timestamp>``.
    """
    nodes = num_nodes if num_nodes is not None else cfg.trainer.num_nodes
    several = (
        int(os.environ.get("WORLD_SIZE", "1")) > 1
        or int(os.environ.get("SLURM_NTASKS", "1")) > 1
        or nodes > 1
    )
    if run_dir is not None:
        path = Path(run_dir)
    elif os.environ.get("TINCT_RUN_DIR"):
        path = Path(os.environ["TINCT_RUN_DIR"])
    elif several:
        job = os.environ.get("SLURM_JOB_ID")
        if job and os.environ.get("SLURM_STEP_ID"):
            job = f"{job}.{os.environ['SLURM_STEP_ID']}"  # two srun steps of one job: two runs
        job = job or os.environ.get("TORCHELASTIC_RUN_ID")
        if not job or job == "none":
            raise RunDirError(
                "launched with several processes but no shared run directory: pass --run-dir DIR "
                "(the same on every rank) or launch with torchrun --rdzv-id / under SLURM"
            )
        path = check_inside(cfg.output_dir, Path(cfg.output_dir) / f"{cfg.name}-job{job}", "run folder")
    else:
        path = new_run_path(cfg)
    return path


@contextlib.contextmanager
def _run_dir_env(path: Path) -> Iterator[None]:
    """Expose the run directory to DDP worker processes that Lightning spawns, for this run only."""
    old = os.environ.get("TINCT_RUN_DIR")
    os.environ["TINCT_RUN_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TINCT_RUN_DIR", None)
        else:
            os.environ["TINCT_RUN_DIR"] = old


def build_trainer(
    cfg: ExperimentConfig, run: RunDir | None, callbacks: list[L.Callback], **overrides: Any
) -> L.Trainer:
    """A Lightning ``Trainer`` from ``cfg.trainer``; non-None ``overrides`` (accelerator, devices ...) win.

    Raises:
        ConfigError: an invalid setting, an accelerator this machine lacks (``gpu`` without CUDA), or
            settings Lightning refuses (its message, with the trainer settings).
    """
    import lightning as L
    from lightning.pytorch.callbacks import ProgressBar
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    from tinct.engine.callbacks import AtomicCheckpointIO, pick_progress_bar

    # Lightning's INFO chatter (tips, "GPU available: False") drowns tinct's own one-line summaries.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    t = check_trainer_settings(cfg.trainer, **overrides)
    progress = [] if run is None else pick_progress_bar(t.progress)
    uses_bar = any(isinstance(c, ProgressBar) for c in progress)
    try:
        return L.Trainer(
            accelerator=t.accelerator,
            devices=t.devices,
            num_nodes=t.num_nodes,
            strategy=t.strategy,
            precision=t.precision,  # type: ignore[arg-type]
            max_epochs=t.max_epochs,
            max_steps=t.max_steps,
            limit_train_batches=t.limit_train_batches,
            limit_val_batches=t.limit_val_batches,
            limit_test_batches=t.limit_test_batches,
            gradient_clip_val=t.gradient_clip_val,
            check_val_every_n_epoch=t.check_val_every_n_epoch,
            log_every_n_steps=t.log_every_n_steps,
            deterministic=t.deterministic,
            logger=False,
            callbacks=callbacks + progress,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(run.path) if run else None,
            enable_progress_bar=uses_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
    except TinctError:
        raise
    except (MisconfigurationException, ValueError) as err:
        settings = ", ".join(
            f"trainer.{k}={getattr(t, k)!r}"
            for k in ("accelerator", "devices", "num_nodes", "strategy", "precision")
        )
        raise ConfigError(f"Lightning refused the trainer settings ({settings}): {err}") from err


def check_trainer_settings(trainer: TrainerConfig, **overrides: Any) -> TrainerConfig:
    """``trainer`` with the non-None ``overrides`` (command-line ``--accelerator`` ...), validated, and
    checked against this machine: a GPU accelerator needs a GPU.

    Raises:
        ConfigError: an override is not a valid setting, or the accelerator is not available here.
    """
    import torch

    try:
        t = TrainerConfig.model_validate(
            {**trainer.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        )
    except ValidationError as err:
        lines = [f"trainer.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ConfigError("invalid trainer settings: " + "; ".join(lines)) from None
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={t.accelerator} but no CUDA GPU is available on this machine; "
            "use cpu or auto"
        )
    if t.accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "trainer.accelerator=mps but Apple's MPS is not available on this machine; use cpu or auto"
        )
    return t


def train(
    cfg: ExperimentConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    accelerator: str | None = None,
    devices: int | str | list[int] | None = None,
    num_nodes: int | None = None,
    strategy: str | None = None,
    callbacks: Sequence[L.Callback] = (),
    verbose: bool = True,
    test: bool = True,
) -> dict[str, Any]:
    """Train ``cfg``'s task, test the best checkpoint, and return the final metrics.

    Args:
        cfg: a validated experiment config (see :func:`tinct.engine.config.load_config`).
        run_dir: where to write the run (default ``<output_dir>/<name>-<timestamp>``).
        resume: continue the run in ``run_dir`` from its ``last.ckpt`` (epochs, optimiser and scheduler
            state, metrics history). Raise ``trainer.max_epochs`` to train a finished run further.
        accelerator, devices, num_nodes, strategy: override ``cfg.trainer`` (Lightning's meaning).
        callbacks: extra Lightning callbacks (timers, custom loggers ...).
        verbose: print the one-line summary at the end.
        test: score the best checkpoint on the test split at the end. Sweeps turn this off, so that the
            test split is looked at only for the winners chosen on validation (``tinct sweep --eval-winners``).

    Returns:
        Flat metrics: ``val/<metric>`` at the best epoch, ``test/<metric>`` of the best checkpoint, plus
        ``best_epoch``, ``epochs``, ``train_time_s`` and ``run_dir``. Also written to ``metrics.json``.
    """
    import lightning as L
    from lightning.pytorch.callbacks import LambdaCallback, ModelCheckpoint

    from tinct.engine.callbacks import EpochMetricsWriter, finite_float
    from tinct.engine.task import TASKS

    if resume and run_dir is None:
        raise RunDirError("resume=True needs the run_dir to resume")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run = RunDir(resolve_run_dir(cfg, run_dir, num_nodes))
    last_ckpt = run.checkpoints / "last.ckpt"
    if resume and not last_ckpt.is_file():
        raise RunDirError(f"{run.path}: nothing to resume (no checkpoints/last.ckpt)")
    # Model and data are built first, so a bad backbone name or data folder fails before any file is written.
    task = TASKS.get(cfg.task)(cfg)
    if resume:
        check_resumable(run, last_ckpt, task)
    datamodule = task.build_datamodule()
    datamodule.setup("fit")
    ckpt_cb = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor=task.monitor,
        mode=task.monitor_mode,
        save_last=True,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    writer = EpochMetricsWriter(run.metrics_csv)
    # config.yaml and env.json are written after the Trainer exists: before, a process of another node
    # (Lightning's launcher sets NODE_RANK, not RANK) would count itself as rank 0 and write them too. A
    # resumed run writes them once Lightning has restored its checkpoint (at the start of training), so a
    # resume that fails leaves the run folder as it was.
    written = False

    def write_run_files(trainer: L.Trainer) -> None:
        nonlocal written
        if trainer.is_global_zero and not written:
            run.create(task.cfg)  # the task may resolve data-dependent fields (patch: the camera list)
        written = True

    on_start = [LambdaCallback(on_train_start=lambda tr, _: write_run_files(tr))] if resume else []
    trainer = build_trainer(
        cfg,
        run,
        [ckpt_cb, writer, *on_start, *callbacks],
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
    )
    if not resume:
        write_run_files(trainer)
    t0 = time.perf_counter()
    with _run_dir_env(run.path), warnings.catch_warnings():
        # Lightning 2.6 calls a torch API that torch 2.14 deprecated; nothing for users to act on.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
        if resume:
            warnings.filterwarnings("ignore", message=r".*exists and is not empty", category=UserWarning)
        trainer.fit(
            task, datamodule=datamodule, ckpt_path=str(last_ckpt) if resume else None, weights_only=True
        )
        train_time = time.perf_counter() - t0
        write_run_files(trainer)  # a resume with nothing left to train does not start training
        best = ckpt_cb.best_model_path or str(last_ckpt)
        test_results = (
            trainer.test(task, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)
            if test
            else []
        )
    metrics: dict[str, Any] = {}
    best_epoch = None
    if writer.rows:
        rows = [r for r in writer.rows if task.monitor in r]
        if rows:
            pick = min if task.monitor_mode == "min" else max
            best_row = pick(rows, key=lambda r: r[task.monitor])
            best_epoch = int(best_row["epoch"])
            metrics.update({k: v for k, v in best_row.items() if k.startswith("val/")})
    metrics.update(
        {
            k: f
            for k, v in (test_results[0] if test_results else {}).items()
            if (f := finite_float(v)) is not None
        }
    )
    metrics.update(
        {
            "best_epoch": best_epoch,
            "epochs": trainer.current_epoch,
            "train_time_s": round(train_time, 2),
            "run_dir": str(run.path),
            "best_checkpoint": str(Path(best).name),
        }
    )
    if trainer.is_global_zero:
        if test_results:
            task.write_test_report(run.path, "test split")
        atomic_write_json(run.metrics_json, metrics)
        plot_learning_curves(
            run.metrics_csv, run.figures / "learning_curves.png", title=f"{cfg.task}: {cfg.name}"
        )
        if verbose:
            print(summary_line(cfg, task.monitor, metrics), flush=True)
    return metrics


def check_resumable(run: RunDir, checkpoint: Path, task: Any) -> dict[str, Any]:
    """Check that ``checkpoint`` (a run's ``last.ckpt``) loads into ``task``'s network before anything is written.

    Returns:
        The checkpoint (loaded on the CPU with ``weights_only=True``).

    Raises:
        RunDirError: the checkpoint is truncated or not a checkpoint.
        ConfigError: the config changes the network (the first mismatching parameters, the config changes
            since the checkpoint, and which overrides a resumed run may use).
    """
    ckpt = read_checkpoint(checkpoint)
    problems = checkpoint_mismatches(task, ckpt["state_dict"])
    if problems:
        changes = config_changes(ckpt.get("tinct_config") or {}, task.cfg.model_dump(mode="json"))
        changed = f"; the config changes {some_of(changes, 4, sep='; ')}" if changes else ""
        raise ConfigError(
            f"{run.path}: cannot resume: this config builds another network than {checkpoint} holds "
            f"({some_of(problems, 3, sep='; ')}){changed}. Nothing in the run folder was changed. A resumed run keeps "
            f"its network: override only settings that leave it as it is ({', '.join(SAFE_ON_RESUME)}), "
            "or train a new run"
        )
    return ckpt


def summary_line(cfg: ExperimentConfig, monitor: str, m: dict[str, Any]) -> str:
    test_key = "test/" + monitor.split("/", 1)[1]
    parts = [f"tinct {cfg.task}/{cfg.name}: {m['epochs']} epochs in {m['train_time_s']:.1f} s"]
    if monitor in m:
        parts.append(f"best {monitor} {m[monitor]:.4g} (epoch {m['best_epoch'] + 1})")
    if test_key in m:
        parts.append(f"{test_key} {m[test_key]:.4g}")
    parts.append(f"-> {m['run_dir']}")
    return " | ".join(parts)
