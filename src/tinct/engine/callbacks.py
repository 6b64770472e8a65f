"""Lightning plug-ins and callbacks of tinct's engine."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tinct.core.atomic import atomic_torch_save, atomic_write_text

__all__ = ["AtomicCheckpointIO", "EpochMetricsWriter", "EpochPrinter", "finite_float", "pick_progress_bar"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed into place; loaded with ``weights_only=True``.

    A run killed mid-save keeps its previous checkpoint intact, and loading a checkpoint never executes
    pickled code (tinct stores only tensors and plain Python containers in checkpoints).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {path} not found")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def finite_float(v: Any) -> float | None:
    """``float(v)`` if that works and is finite (tensors included), else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class _ValidationTracker(L.Callback):
    """Knows whether validation ran in the current epoch: Lightning keeps the last ``val/*`` values in
    ``callback_metrics`` on epochs without validation (``check_val_every_n_epoch > 1``), which must not be
    reported as that epoch's numbers."""

    _validated = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def _fresh(self, key: str) -> bool:
        return self._validated or not key.startswith("val/")


class EpochMetricsWriter(_ValidationTracker):
    """Write one row per epoch to ``metrics.csv`` (rank 0 only, atomically, resume-safe).

    On resume, rows of epochs at or after the resumed epoch are dropped first, so a run interrupted
    between writing metrics and saving its checkpoint never shows an epoch twice. Validation metrics
    appear only in the rows of epochs that ran validation.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._t0 = 0.0  # set at each epoch start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.path.is_file():
            old = pd.read_csv(self.path)
            self.rows = old[old["epoch"] < trainer.current_epoch].to_dict("records")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for k, v in sorted(trainer.callback_metrics.items()):
            if k.startswith(("train/", "val/")) and self._fresh(k) and (f := finite_float(v)) is not None:
                row[k] = f
        if trainer.optimizers:
            row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        row["epoch_time_s"] = round(time.perf_counter() - self._t0, 3)
        self.rows.append(row)
        if trainer.is_global_zero:
            atomic_write_text(self.path, pd.DataFrame(self.rows).to_csv(index=False))


class EpochPrinter(_ValidationTracker):
    """One line per epoch on stdout, for logs and CI where a live progress bar would flood the output."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        keys = ["train/loss", "val/loss", getattr(pl_module, "monitor", "")]
        parts = [
            f"{k} {f:.4g}"
            for k in dict.fromkeys(keys)
            if k and self._fresh(k) and (f := finite_float(trainer.callback_metrics.get(k))) is not None
        ]
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  " + "  ".join(parts), flush=True)


def pick_progress_bar(mode: str) -> list[L.Callback]:
    """``auto``: a rich progress bar on a terminal, one printed line per epoch otherwise."""
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "none"
    if mode == "rich":
        return [RichProgressBar(leave=True)]
    if mode == "tqdm":
        return [TQDMProgressBar()]
    return [EpochPrinter()]
