"""The typed config base every experiment shares, ``--set`` overrides and YAML reading.

A config is a pydantic model: unknown keys are errors, values are validated on assignment. Tasks subclass
:class:`ExperimentConfig` with typed ``data`` and ``model`` sections; :func:`tinct.engine.config.load_config`
picks the subclass by the ``task`` key through the task registry.

Overrides use dotted keys with YAML values: ``--set model.backbone=mobilenet_v2 --set optim.lr=3e-4``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tinct.core.checks import check_name
from tinct.core.exceptions import ConfigError

__all__ = [
    "ACCELERATORS",
    "PRECISIONS",
    "ExperimentConfig",
    "OptimConfig",
    "StrictModel",
    "TrainerConfig",
    "apply_overrides",
    "parse_overrides",
    "read_yaml_file",
    "save_config",
]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OptimConfig(StrictModel):
    """Optimiser and learning-rate schedule."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    scheduler: Literal["cosine", "none", "step"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0)


# What Lightning's Trainer accepts (lightning 2.6: AcceleratorRegistry plus "gpu" and "auto"; precision:
# lightning.fabric.connector._PRECISION_INPUT with its integers as strings). Spelled out here, so that
# reading a config does not import Lightning; tests/engine/test_config.py compares them with Lightning's.
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "32",
    "16",
    "bf16",
    "64",
)


class TrainerConfig(StrictModel):
    """What Lightning's ``Trainer`` gets. CPU by default; the same config runs on GPUs / nodes with DDP.

    ``accelerator`` is one of :data:`ACCELERATORS`, ``precision`` one of :data:`PRECISIONS` (an integer
    such as ``16`` is read as its string), ``strategy`` a non-empty Lightning strategy name.
    """

    max_epochs: int = Field(10, ge=1)
    max_steps: int = -1
    accelerator: str = "cpu"
    devices: int | str | list[int] = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str = "32-true"
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    gradient_clip_val: float | None = None
    check_val_every_n_epoch: int = Field(1, ge=1)
    log_every_n_steps: int = Field(10, ge=1)
    deterministic: bool = False
    progress: Literal["auto", "rich", "tqdm", "none"] = "auto"

    @field_validator("accelerator")
    @classmethod
    def _check_accelerator(cls, value: str) -> str:
        if value not in ACCELERATORS:
            raise ValueError(
                f"unknown accelerator {value!r}; valid choices: {', '.join(map(repr, ACCELERATORS))}"
            )
        return value

    @field_validator("precision", mode="before")
    @classmethod
    def _check_precision(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # precision: 16 in YAML
        if isinstance(value, str) and value not in PRECISIONS:
            raise ValueError(
                f"unknown precision {value!r}; valid choices: {', '.join(map(repr, PRECISIONS))}"
            )
        return value

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("strategy must be a Lightning strategy name such as 'auto', 'ddp' or 'fsdp'")
        return value


class ExperimentConfig(StrictModel):
    """The common part of every experiment; tasks subclass it with typed ``data`` and ``model`` sections."""

    task: str
    name: str = "run"
    seed: int = 0
    output_dir: str = "runs"
    data: Any = None
    model: Any = None
    optim: OptimConfig = OptimConfig()
    trainer: TrainerConfig = TrainerConfig()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # the run folder is <output_dir>/<name>-<timestamp>: a name must not climb out of output_dir
        return check_name(value, "name")


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``["a.b=1", "c=[1, 2]"]`` into ``{"a.b": 1, "c": [1, 2]}`` (values are YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({err})") from err
    return out


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted-key ``overrides`` applied (intermediate sections are created)."""
    out = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is a value, not a section")
            node = child
        node[leaf] = value
    return out


def read_yaml_file(path: str | os.PathLike[str], what: str = "file") -> dict[str, Any]:
    """The mapping in a YAML file (empty file: ``{}``).

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping at the top level (file named).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def save_config(cfg: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the fully resolved config (defaults included) as YAML, atomically."""
    from tinct.core.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
