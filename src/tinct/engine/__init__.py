"""The experiment engine: configs, training, evaluation, prediction and run directories."""

from tinct.engine.config import ExperimentConfig, OptimConfig, TrainerConfig, load_config
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
