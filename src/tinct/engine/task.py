"""The task interface: one LightningModule per problem, built from a typed config.

A task owns its model, loss and metrics. ``step(batch)`` returns a dict with at least ``"loss"`` and
``"output"`` (plus any named terms, logged automatically), and optionally ``"errors"``: per-sample errors
whose distribution statistics (mean, median, trimean, best/worst 25 %) are computed over the whole epoch
and logged as ``<stage>/<error_name>_<stat>``.
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor

from tinct.core.config import ExperimentConfig
from tinct.core.registry import Registry
from tinct.engine.statistics import error_statistics

__all__ = ["TASKS", "SplitDataModule", "Task"]

# Filled by the domain packages: the ``tinct.tasks`` entry points of pyproject.toml name the module of each
# task, imported the first time its name is looked up (the engine itself imports no domain).
TASKS: Registry[type[Task]] = Registry("task", entry_points="tinct.tasks")


class SplitDataModule(L.LightningDataModule):
    """The loaders of a data module that fills ``train_set`` / ``val_set`` / ``test_set`` in ``setup``,
    batched by ``cfg.data.batch_size`` with ``cfg.data.num_workers`` workers (shuffled for training).

    ``drop_last_train``: drop a last, smaller training batch (tasks whose loss needs full batches).
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
        return DataLoader(
            ds, batch_size=d.batch_size, shuffle=shuffle, num_workers=d.num_workers,
            persistent_workers=d.num_workers > 0,
            drop_last=self.drop_last_train and shuffle and len(ds) > d.batch_size,
        )  # fmt: skip

    def train_dataloader(self) -> Any:
        assert self.train_set is not None, "setup() has not run"
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> Any:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> Any:
        return self._loader(self.test_set, False)


class Task(L.LightningModule, abc.ABC):
    """Base class of tinct's tasks.

    Subclasses set ``Config`` (their typed config class), ``monitor`` / ``monitor_mode`` (the validation
    metric that picks the best checkpoint), ``error_name`` (how per-sample errors are called in metric
    names), and implement :meth:`step`, :meth:`build_datamodule` and :meth:`predict_files`.
    """

    Config: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    monitor: ClassVar[str] = "val/loss"
    monitor_mode: ClassVar[str] = "min"
    error_name: ClassVar[str] = "error"

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self._errors: dict[str, list[Tensor]] = {"val": [], "test": []}

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

    def predict_files(self, paths: Sequence[Path], out_dir: Path) -> list[dict[str, Any]]:
        raise NotImplementedError(f"task {self.cfg.task!r} has no file prediction")

    def write_test_report(self, out_dir: Path, data: str) -> dict[str, Any]:
        """Write task-specific files about the last test run (per-sample tables, figures) into ``out_dir``.

        Called on rank 0 after the test of a training run (``out_dir`` = the run directory) and by
        ``tinct evaluate``; ``data`` says what was tested. Returns a summary (empty: nothing written).
        """
        return {}

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

    def _eval_step(self, stage: str, batch: Any) -> None:
        out = self.step(batch)
        self._log_terms(stage, out, self._batch_size(batch))
        if "errors" in out:
            self._errors[stage].append(out["errors"].detach().float().reshape(-1))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def _epoch_stats(self, stage: str) -> None:
        chunks = self._errors[stage]
        self._errors[stage] = []
        if not chunks:
            return
        errors = torch.cat(chunks)
        if self.trainer.world_size > 1:
            errors = self.all_gather(errors).reshape(-1)
        for name, value in error_statistics(errors).items():
            if name != "n":
                self.log(f"{stage}/{self.error_name}_{name}", float(value), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_stats("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_stats("test")

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        params = [p for p in self.parameters() if p.requires_grad]
        if o.name == "adamw":
            opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.name == "adam":
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        if o.scheduler == "none":
            return opt
        total = max(1, self.cfg.trainer.max_epochs)
        warm = o.warmup_epochs

        def factor(epoch: int) -> float:
            if epoch < warm:
                return (epoch + 1) / (warm + 1)
            if o.scheduler == "step":
                return o.gamma ** ((epoch - warm) // o.step_size)
            progress = (epoch - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A plain dict, so the checkpoint stays loadable with torch.load(weights_only=True).
        checkpoint["tinct_config"] = self.cfg.model_dump(mode="json")
