"""The experiment engine: the Task base, train / evaluate / predict, run directories, callbacks, sweeps,
summaries, reports and generic plots. It names no task: tasks reach it through the registry
(:data:`tinct.engine.task.TASKS`)."""

from tinct.core.config import ExperimentConfig, OptimConfig, TrainerConfig
from tinct.engine.config import load_config
from tinct.engine.evaluate import evaluate, load_task, predict
from tinct.engine.run_dir import RunDir
from tinct.engine.train import train

__all__ = [
    "ExperimentConfig",
    "OptimConfig",
    "RunDir",
    "TrainerConfig",
    "evaluate",
    "load_config",
    "load_task",
    "predict",
    "train",
]
