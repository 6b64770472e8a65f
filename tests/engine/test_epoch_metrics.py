"""Epoch metrics (tinct.engine.metrics): pooled over the epoch and over processes, NaN refused by name;
distributed evaluation loaders that score every sample once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import DataError
from tinct.engine.metrics import SampleStatistics
from tinct.engine.statistics import error_statistics
from tinct.engine.task import SplitDataModule, Task


def test_halves_merged_give_the_statistics_of_the_whole() -> None:
    g = torch.Generator().manual_seed(0)
    errors = torch.rand(37, generator=g) * 10
    first, second = SampleStatistics(error_statistics), SampleStatistics(error_statistics)
    for chunk in errors[:20].split(6):  # uneven halves, in uneven batches, as two processes would hold
        first.update(chunk)
    second.update(errors[20:])
    first.merge_state(second)  # the reduction torchmetrics applies when it synchronises processes
    whole = error_statistics(errors)
    assert first.compute() == pytest.approx({k: v for k, v in whole.items() if k != "n"}, rel=1e-6)


def test_statistics_prefixed_and_sample_count_left_out() -> None:
    metric = SampleStatistics(error_statistics, prefix="angular_")
    metric.update(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert metric.compute() == {
        "angular_mean": 2.5, "angular_median": 2.5, "angular_trimean": 2.5, "angular_best25": 1.0,
        "angular_worst25": 4.0, "angular_max": 4.0,
    }  # fmt: skip


def test_nan_refused_naming_the_metric_and_how_many() -> None:
    metric = SampleStatistics(error_statistics, name="val/angular")
    metric.update(torch.tensor([1.0, float("nan"), 2.0, float("inf"), 3.0]))
    with pytest.raises(ValueError, match=r"val/angular: .*2 of 5 errors are NaN or inf"):
        metric.compute()


class _Errors(Task):
    """A task whose per-sample errors are its batches' values, its loss their mean."""

    def __init__(self) -> None:
        super().__init__(ExperimentConfig(task="toy"))
        self.layer = torch.nn.Linear(1, 1)

    def step(self, batch: Any) -> dict[str, Tensor]:
        errors = batch["x"] + 0.0 * self.layer.weight.sum()
        return {"loss": errors.mean(), "output": errors, "errors": errors}

    def build_datamodule(self) -> L.LightningDataModule:
        raise NotImplementedError


def _validate(task: Task, batches: list[Tensor]) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    loader = DataLoader([{"x": b} for b in batches], batch_size=None)
    (result,) = trainer.validate(task, dataloaders=loader, verbose=False)
    return {k: float(v) for k, v in result.items()}


def test_validation_logs_the_statistics_of_every_sample_and_the_mean_loss() -> None:
    batches = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([40.0])]  # uneven batches
    logged = _validate(_Errors(), batches)
    whole = error_statistics(torch.cat(batches))
    assert logged["val/error_median"] == pytest.approx(whole["median"])
    assert logged["val/error_worst25"] == pytest.approx(whole["worst25"])
    # the loss term is Lightning's batch-size-weighted epoch mean: the mean over samples, 10, not 21.25
    assert logged["val/loss"] == pytest.approx(whole["mean"]) == pytest.approx(10.0)


def test_nan_errors_in_a_validation_epoch_name_the_stage() -> None:
    with pytest.raises(ValueError, match=r"val/error: error_statistics: 1 of 3 errors are NaN or inf"):
        _validate(_Errors(), [torch.tensor([1.0, float("nan")]), torch.tensor([2.0])])


def test_metric_states_stay_out_of_checkpoints() -> None:
    task = _Errors()
    _validate(task, [torch.ones(3)])  # makes the term metrics (val/loss) too
    task.epoch_metrics["val"]["errors"].update(torch.ones(3))
    assert "loss" in task.epoch_terms["val"]
    assert set(task.state_dict()) == {"layer.weight", "layer.bias"}  # old checkpoints load strictly


def _eval_indices(n: int, rank: int | None) -> list[int]:
    dm = SplitDataModule(ExperimentConfig(task="toy", data=SimpleNamespace(batch_size=2, num_workers=0)))
    dm.test_set = list(range(n))
    if rank is not None:  # what a distributed Trainer of two processes tells the data module
        dm.trainer = SimpleNamespace(distributed_sampler_kwargs={"num_replicas": 2, "rank": rank})
    return [int(i) for batch in dm.test_dataloader() for i in batch]


def test_distributed_evaluation_scores_every_sample_once() -> None:
    assert _eval_indices(5, None) == [0, 1, 2, 3, 4]
    shares = [_eval_indices(5, rank) for rank in (0, 1)]
    assert shares == [[0, 2, 4], [1, 3]]  # unpadded: Lightning's default sampler would add a 6th sample


def test_evaluation_split_smaller_than_the_processes_refused() -> None:
    with pytest.raises(DataError, match=r"1 sample.*2 processes"):
        _eval_indices(1, 0)
