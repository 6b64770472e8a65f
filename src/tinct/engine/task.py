"""The task interface: one LightningModule per problem, built from a typed config.

A task owns its model, loss and metrics. ``step(batch)`` returns a dict with at least ``"loss"`` and
``"output"`` (plus any named scalar terms, logged automatically), and optionally ``"errors"``: per-sample
errors whose distribution statistics (mean, median, trimean, best/worst 25 %, max) are computed over the
whole epoch and logged as ``<stage>/<error_name>_<stat>``.

How validation and test numbers are pooled: every sample is evaluated exactly once (in a distributed run
:class:`SplitDataModule` gives each process an unpadded share of the split); each scalar term is a
``torchmetrics`` mean weighted by batch size, its sums added over processes before dividing, so the mean
over samples (Lightning's own synchronised epoch mean divides the integer sample count by the number of
processes in place, truncating it: 33 samples on two processes count as 32); the per-sample statistics and
each task's own metrics are ``torchmetrics`` metrics too (:meth:`Task.build_metrics`), computed once over
the whole epoch on every process's samples. Training terms are Lightning's epoch means (the padded
training sampler gives every process as many samples).
"""

from __future__ import annotations

import abc
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import Metric

from tinct.core.config import ExperimentConfig, OptimConfig
from tinct.core.exceptions import DataError
from tinct.core.registry import Registry
from tinct.engine.metrics import SampleStatistics, WeightedMean
from tinct.engine.statistics import error_statistics
from tinct.io.image import IMAGE_SUFFIXES

__all__ = ["TASKS", "ReportColumn", "ReportTable", "SplitDataModule", "Task", "build_scheduler"]

# Filled by the domain packages: the ``tinct.tasks`` entry points of pyproject.toml name the module of each
# task, imported the first time its name is looked up (the engine itself imports no domain).
TASKS: Registry[type[Task]] = Registry("task", entry_points="tinct.tasks")


def build_scheduler(
    opt: torch.optim.Optimizer, o: OptimConfig, max_epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule of ``cfg.optim`` from torch's own schedulers.

    ``warmup_epochs`` W > 0 ramps the rate linearly over the first W epochs (factor ``(e + 1) / (W + 1)``,
    :class:`~torch.optim.lr_scheduler.LinearLR`), then :class:`~torch.optim.lr_scheduler.SequentialLR`
    hands over to a cosine decay to zero at ``max_epochs`` (:class:`~torch.optim.lr_scheduler.CosineAnnealingLR`,
    ``scheduler: cosine``) or to a decay by ``gamma`` every ``step_size`` epochs
    (:class:`~torch.optim.lr_scheduler.StepLR`, ``scheduler: step``). ``scheduler: none``: no schedule (None).

    Example:
        >>> from tinct.core.config import OptimConfig
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = build_scheduler(opt, OptimConfig(lr=1.0, warmup_epochs=1), max_epochs=3)
        >>> rates = []
        >>> for _ in range(3):
        ...     rates.append(round(opt.param_groups[0]["lr"], 3))
        ...     opt.step()
        ...     sched.step()
        >>> rates
        [0.5, 1.0, 0.5]
    """
    if o.scheduler == "none":
        return None
    lrs = torch.optim.lr_scheduler
    warm = o.warmup_epochs
    if o.scheduler == "step":
        main: lrs.LRScheduler = lrs.StepLR(opt, step_size=o.step_size, gamma=o.gamma)
    else:
        main = lrs.CosineAnnealingLR(opt, T_max=max(1, max_epochs - warm), eta_min=0.0)
    if warm == 0:
        return main
    ramp = lrs.LinearLR(opt, start_factor=1.0 / (warm + 1), end_factor=1.0, total_iters=warm)
    return lrs.SequentialLR(opt, [ramp, main], milestones=[warm])


class SplitDataModule(L.LightningDataModule):
    """The loaders of a data module that fills ``train_set`` / ``val_set`` / ``test_set`` in ``setup``,
    batched by ``cfg.data.batch_size`` with ``cfg.data.num_workers`` workers (shuffled for training).

    ``drop_last_train``: drop a last, smaller training batch (tasks whose loss needs full batches).

    In a distributed run the validation and test loaders split their set between the processes without
    padding (Lightning's ``UnrepeatedDistributedSampler``; its default sampler repeats samples so that every
    process gets as many), so every sample is scored exactly once and some processes may run one batch
    fewer. Training keeps Lightning's padded, shuffled sampler.
    """

    drop_last_train: ClassVar[bool] = False

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_set: Any = None
        self.val_set: Any = None
        self.test_set: Any = None

    def _loader(self, ds: Any, shuffle: bool) -> Any:
        from torch.utils.data import DataLoader

        d = self.cfg.data
        sampler = None if shuffle else self._eval_sampler(ds)
        return DataLoader(
            ds, batch_size=d.batch_size, shuffle=shuffle, num_workers=d.num_workers,
            persistent_workers=d.num_workers > 0, sampler=sampler,
            drop_last=self.drop_last_train and shuffle and len(ds) > d.batch_size,
        )  # fmt: skip

    def _eval_sampler(self, ds: Any) -> Any:
        """An unpadded share of ``ds`` for this process of a distributed run (None: not distributed)."""
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        trainer = self.trainer
        kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
        if not kwargs or kwargs.get("num_replicas", 1) <= 1:
            return None
        if len(ds) < kwargs["num_replicas"]:
            raise DataError(
                f"an evaluation split of {len(ds)} sample(s) cannot be shared by {kwargs['num_replicas']} "
                "processes without scoring a sample twice; evaluate on fewer devices (tinct evaluate runs "
                "on one)"
            )
        # A DistributedSampler subclass, so Lightning keeps it instead of injecting its padded one.
        return UnrepeatedDistributedSampler(ds, shuffle=False, **kwargs)

    def train_dataloader(self) -> Any:
        assert self.train_set is not None, "setup() has not run"
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> Any:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> Any:
        return self._loader(self.test_set, False)


@dataclass(frozen=True)
class ReportColumn:
    """A number column of a :class:`ReportTable`: ``header`` over a run's ``<split>/<metric>`` times ``scale``."""

    header: str
    metric: str  # without its ``val/`` or ``test/`` prefix
    scale: float = 1.0


@dataclass(frozen=True)
class ReportTable:
    """The study-style table of a task's runs in ``tinct report`` (:mod:`tinct.engine.report`).

    One row per run that has the task's main metric (``monitor``), best on validation first: ``first`` (the
    run's name, or its sweep parameters), ``Epochs``, ``val <header>`` (the validation ``monitor`` that ranks
    the rows), then ``columns``, from the test metrics where the run has them, else from the validation
    metrics. The test metrics never rank.

    Attributes:
        title: the table's heading.
        columns: the number columns.
        first: header of the first column.
        note: what the numbers are (units), written above the table.
        decimals: digits after the point; None: 4 significant digits.
    """

    title: str
    columns: tuple[ReportColumn, ...]
    first: str = "Model"
    note: str = ""
    decimals: int | None = 2


class Task(L.LightningModule, abc.ABC):
    """Base class of tinct's tasks.

    Subclasses implement :meth:`step`, :meth:`build_datamodule` and :meth:`predict_files`, and set:

    Attributes:
        Config: their typed config class.
        monitor: the validation metric that picks the best checkpoint and ranks runs in summaries, sweeps
            and reports (``val/<name>``, logged by every validation epoch).
        monitor_mode: ``"min"`` or ``"max"``: whether lower or higher values of ``monitor`` are better.
        error_name: how per-sample errors are called in metric names (``<stage>/<error_name>_<stat>``).
        input_suffixes: the file suffixes ``tinct predict`` collects from a folder for this task.
        report_table: the table of the task's runs in ``tinct report`` (its metric columns, decimals,
            note), sorted by ``monitor``; None (the base class, and a run of a task that is not installed):
            a table of every ``val/`` and ``test/`` metric the runs have.
        epoch_metrics: ``{"val": ..., "test": ...}``, the :meth:`build_metrics` of each stage (submodules,
            so they follow the task's device; their states are not saved in checkpoints).
    """

    Config: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    monitor: ClassVar[str] = "val/loss"
    monitor_mode: ClassVar[str] = "min"
    error_name: ClassVar[str] = "error"
    #: what ``tinct predict`` collects from a folder for this task (files named directly are always tried)
    input_suffixes: ClassVar[tuple[str, ...]] = IMAGE_SUFFIXES
    report_table: ClassVar[ReportTable | None] = None
    #: dotted config fields the task fills from its data when they are None (saved in the run's config);
    #: a study asking again for a finished run with them unset is the same experiment
    resolved_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.epoch_metrics = nn.ModuleDict(
            {stage: nn.ModuleDict(self.build_metrics(stage)) for stage in ("val", "test")}
        )
        # The scalar terms of step() (loss ...): a batch-size-weighted mean each, made at their first batch.
        self.epoch_terms = nn.ModuleDict({stage: nn.ModuleDict() for stage in ("val", "test")})

    # -- required of every task -----------------------------------------------------------------
    @abc.abstractmethod
    def step(self, batch: Any) -> dict[str, Tensor]:
        """Loss, output and named terms (and optionally per-sample ``errors``) of one batch."""

    @abc.abstractmethod
    def build_datamodule(self) -> L.LightningDataModule:
        """The Lightning data module of this task's ``cfg.data``."""

    # -- optional capabilities: a task that lacks one says so by name --------------------------
    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        """The config of this run pointed at another dataset folder (for ``tinct evaluate --data``)."""
        raise NotImplementedError(f"task {self.cfg.task!r} cannot evaluate on a folder")

    def predict_files(
        self, paths: Sequence[Path], out_dir: Path, names: Sequence[Path] | None = None
    ) -> list[dict[str, Any]]:
        """Run the model on image files and write its outputs into ``out_dir``; one table row per file.

        ``names[i]`` is the output name of ``paths[i]`` relative to ``out_dir``, without suffix (unique
        among the inputs: :func:`tinct.core.naming.unique_output_names`); default: each file's stem.
        """
        raise NotImplementedError(f"task {self.cfg.task!r} has no file prediction")

    def write_test_report(self, out_dir: Path, data: str) -> dict[str, Any]:
        """Write task-specific files about the last test run (per-sample tables, figures) into ``out_dir``.

        Called on rank 0 after the test of a training run (``out_dir`` = the run directory) and by
        ``tinct evaluate``; ``data`` says what was tested. Returns a summary (empty: nothing written).
        """
        return {}

    # -- epoch metrics ----------------------------------------------------------------------------
    def build_metrics(self, stage: str) -> dict[str, Metric]:
        """The ``torchmetrics`` metrics of a ``"val"`` or ``"test"`` epoch, by name.

        A metric whose ``compute()`` returns a mapping is logged as ``<stage>/<key>`` for each of its keys,
        any other as ``<stage>/<name>``. Called by ``Task.__init__`` (so before the rest of a subclass's
        ``__init__``). The base class: ``errors``, the :func:`~tinct.engine.statistics.error_statistics`
        of the per-sample ``"errors"`` of :meth:`step`, as ``<error_name>_mean`` ...
        """
        return {
            "errors": SampleStatistics(
                error_statistics, name=f"{stage}/{self.error_name}", prefix=f"{self.error_name}_"
            )
        }

    def update_metrics(self, stage: str, batch: Any, out: dict[str, Tensor]) -> None:
        """Update the stage's :meth:`build_metrics` with one batch and its :meth:`step` output ``out``."""
        if "errors" in out:
            self.epoch_metrics[stage]["errors"].update(out["errors"])

    def updates_on_all_processes(self, metrics: Sequence[Metric]) -> list[int]:
        """How many times each of ``metrics`` was updated, summed over the processes of a distributed run.

        A collective there: every process calls it with the same metrics in the same order. A metric with a
        non-zero count must then be computed on every process (its own synchronisation is a collective too),
        including one that saw no batch of it.
        """
        counts = torch.tensor([int(m.update_count) for m in metrics], device=self.device)
        if self.trainer.world_size > 1:
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        return [int(c) for c in counts.tolist()]

    def _log_epoch_metrics(self, stage: str) -> None:
        # Terms first, then build_metrics(); the same order on every process (each runs at least one batch).
        metrics = [*self.epoch_terms[stage].items(), *self.epoch_metrics[stage].items()]
        counts = self.updates_on_all_processes([m for _, m in metrics])
        for (key, metric), count in zip(metrics, counts, strict=True):
            if count:
                value = metric.compute()
                items = value.items() if isinstance(value, dict) else [(key, value)]
                for name, number in items:
                    # Already the value of every process's samples, the same on each: "max" keeps it
                    # exactly (a mean over processes could round it) and Lightning's sync check quiet.
                    self.log(
                        f"{stage}/{name}",
                        float(number),
                        sync_dist=True,
                        reduce_fx="max",
                        prog_bar=name == "loss",
                    )
            metric.reset()

    # -- Lightning plumbing ---------------------------------------------------------------------
    @staticmethod
    def _batch_size(batch: Any) -> int:
        if isinstance(batch, dict):
            first = next(iter(batch.values()))
            return int(first.shape[0])
        return int(batch[0].shape[0])

    def _log_terms(self, stage: str, out: dict[str, Tensor], batch_size: int) -> None:
        for key, value in out.items():
            if key in {"output", "errors"} or not isinstance(value, Tensor) or value.ndim != 0:
                continue
            if stage in self.epoch_terms:
                terms = self.epoch_terms[stage]
                if key not in terms:
                    terms[key] = WeightedMean().to(self.device)
                terms[key].update(value.detach(), weight=batch_size)
                continue
            self.log(
                f"{stage}/{key}",
                value.detach(),
                on_step=False,
                on_epoch=True,
                batch_size=batch_size,
                sync_dist=True,
                prog_bar=key == "loss",
            )

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        out = self.step(batch)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError(
                f"non-finite training loss {out['loss'].item()} at step {self.global_step}"
            )
        self._log_terms("train", out, self._batch_size(batch))
        return out["loss"]

    def _eval_step(self, stage: str, batch: Any) -> dict[str, Tensor]:
        out = self.step(batch)
        self._log_terms(stage, out, self._batch_size(batch))
        self.update_metrics(stage, batch, out)
        return out

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_start(self) -> None:
        self._reset_epoch_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._reset_epoch_metrics("test")

    def _reset_epoch_metrics(self, stage: str) -> None:
        # An interrupted epoch leaves nothing behind.
        for metric in [*self.epoch_terms[stage].values(), *self.epoch_metrics[stage].values()]:
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if o.name == "adamw":
            opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.name == "adam":
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        sched = build_scheduler(opt, o, self.cfg.trainer.max_epochs)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The schedule follows the config of now: a run resumed with a raised trainer.max_epochs continues
        # on the schedule of the new budget at the epoch it reached, instead of the finished schedule's
        # zero learning rate. The stored scheduler state (and the optimiser's current rate) are replaced by
        # those of the new schedule advanced to the same epoch.
        states = checkpoint.get("lr_schedulers")
        if not states or self.cfg.optim.scheduler == "none":
            return
        epoch = int(states[0].get("last_epoch", 0))
        dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=self.cfg.optim.lr)
        fresh = build_scheduler(dummy, self.cfg.optim, self.cfg.trainer.max_epochs)
        assert fresh is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
            for _ in range(epoch):
                fresh.step()
        states[0] = fresh.state_dict()
        factor = dummy.param_groups[0]["lr"] / self.cfg.optim.lr
        for opt_state in checkpoint.get("optimizer_states", [])[:1]:
            for group in opt_state.get("param_groups", []):
                group["lr"] = group.get("initial_lr", self.cfg.optim.lr) * factor

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A plain dict, so the checkpoint stays loadable with torch.load(weights_only=True).
        checkpoint["tinct_config"] = self.cfg.model_dump(mode="json")
