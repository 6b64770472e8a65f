"""Epoch metrics of the tasks as :class:`torchmetrics.Metric`\\ s, so accumulation over an epoch and
synchronisation across processes are torchmetrics', not hand-rolled.

A metric of a task is updated by every validation / test batch and computed once at the end of the epoch,
over every sample that every process saw (with :class:`tinct.engine.task.SplitDataModule`'s unpadded
distributed sampler, each sample exactly once). Its state is not saved in checkpoints (torchmetrics states
are not persistent), so adding or changing a metric never breaks loading an older checkpoint.

:class:`SampleStatistics` keeps the per-sample values themselves (a ``cat`` state, gathered from every
process at compute time, uneven lengths included) and summarises them by a statistics function such as
:func:`tinct.engine.statistics.error_statistics`: medians and percentiles need every value, not a running
sum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = ["SampleStatistics", "WeightedMean"]


class WeightedMean(Metric):
    """The weighted mean of values over an epoch (and across processes): sums kept in float64.

    The tasks' scalar terms (``loss`` ...) are batch means weighted by their batch size, so the epoch value
    is the mean over samples however the batches fall on the processes. NaN is kept (a NaN loss logs NaN).
    torchmetrics' ``MeanMetric`` is not used here: with ``nan_strategy="disable"`` (the one that keeps NaN)
    it ignores the weights (torchmetrics 1.9).

    Example:
        >>> mean = WeightedMean()
        >>> mean.update(torch.tensor(2.5), 4)  # the mean of a batch of four
        >>> mean.update(torch.tensor(40.0), 1)
        >>> mean.compute().item()
        10.0
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    total: Tensor
    weight: Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, value: Tensor | float, weight: Tensor | float = 1.0) -> None:
        """Add ``value`` (any shape: each element) with ``weight`` (broadcast to it)."""
        v = torch.as_tensor(value).detach().to(device=self.total.device, dtype=torch.float64)
        w = torch.broadcast_to(torch.as_tensor(weight, dtype=torch.float64, device=v.device), v.shape)
        self.total += (v * w).sum()
        self.weight += w.sum()

    def compute(self) -> Tensor:
        """Sum of weighted values over the sum of weights (NaN when nothing was added)."""
        return self.total / self.weight


class SampleStatistics(Metric):
    """Per-sample values of an epoch (across processes), summarised by ``statistics`` at compute time.

    Args:
        statistics: maps the 1-D float tensor of all values to named numbers, e.g.
            :func:`tinct.engine.statistics.error_statistics`. A ``ValueError`` it raises (NaN errors, no
            values) comes out of :meth:`compute` prefixed with ``name``.
        name: what the values are, for error messages (the task uses ``<stage>/<error_name>``).
        prefix: put before every name :meth:`compute` returns (``"angular_"``: ``angular_mean`` ...).
        skip: names of ``statistics`` left out of :meth:`compute` (the sample count ``n`` by default).
        **kwargs: :class:`torchmetrics.Metric`'s own (``sync_on_compute``, ``process_group`` ...).

    Shape:
        - update: any shape; flattened (one value per element).

    Example:
        >>> from tinct.engine.statistics import error_statistics
        >>> first, second = SampleStatistics(error_statistics), SampleStatistics(error_statistics)
        >>> first.update(torch.tensor([1.0, 2.0]))
        >>> second.update(torch.tensor([3.0, 4.0]))
        >>> first.merge_state(second)  # what the synchronisation across processes does
        >>> first.compute()["median"]
        2.5
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    values: list[Tensor]

    def __init__(
        self,
        statistics: Callable[[Tensor], Mapping[str, float]],
        name: str = "values",
        prefix: str = "",
        skip: tuple[str, ...] = ("n",),
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.statistics = statistics
        self.name = name
        self.prefix = prefix
        self.skip = skip
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, values: Tensor) -> None:
        """Add the values of one batch (detached, as float32)."""
        self.values.append(values.detach().to(torch.float32).reshape(-1))

    def compute(self) -> dict[str, float]:
        """``statistics`` of every value added since the last reset (on every process), names prefixed.

        Raises:
            ValueError: ``statistics``' own (e.g. "3 of 40 errors are NaN or inf"), naming this metric;
                also when nothing was added.
        """
        values = self.values  # a list of batches, or one tensor once synchronised across processes
        if isinstance(values, list):
            values = dim_zero_cat(values) if values else torch.zeros(0)
        try:
            stats = self.statistics(values)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from err
        return {f"{self.prefix}{k}": float(v) for k, v in stats.items() if k not in self.skip}
