"""Sweep files: a base config plus axes, and the trial points they stand for (see :mod:`tinct.engine.sweep`).

:func:`load_sweep` reads and validates a sweep file (every point's config included, before anything
trains); :meth:`SweepSpec.points` lists its trials in order, each a :class:`TrialPoint` with its axis labels,
the config overrides they stand for and a stable key; :meth:`SweepSpec.trial_config` and
:meth:`SweepSpec.pretrain_config` build the configs a worker trains. The file format is described in
:mod:`tinct.engine.sweep`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from tinct.core.checks import NAME_MAX_BYTES, check_name
from tinct.core.config import ExperimentConfig, StrictModel, apply_overrides, read_yaml_file
from tinct.core.exceptions import ConfigError
from tinct.engine.config import config_from_dict

if TYPE_CHECKING:
    import optuna

__all__ = ["PRETRAIN_KEY", "PretrainStage", "SweepSpec", "TrialPoint", "label_text", "load_sweep"]

PRETRAIN_KEY = "pretrain"  # the override that makes a trial run the sweep's pretraining stage first
_SCALARS = (str, int, float, bool, type(None))


class PretrainStage(StrictModel):
    """A training stage that trials with ``pretrain: true`` run first, shared between trials.

    Attributes:
        config: the stage's experiment config (relative to the sweep file).
        share: dotted keys copied from the trial's config into the stage's (``data`` copies the whole
            section), so the pretrained weights fit the trial's network and data. Trials whose copied
            values are equal share one pretraining run.
        into: the trial key that receives the stage's checkpoint path.
        checkpoint: ``last`` (default: the validation split does not pick the representation) or ``best``.
    """

    config: str
    share: list[str] = Field(
        default_factory=lambda: ["seed", "data", "model.backbone", "model.width", "model.input_space"]
    )
    into: str = "model.init"
    checkpoint: Literal["last", "best"] = "last"


class SweepSpec(StrictModel):
    """A sweep file (see the module docstring); :func:`load_sweep` reads and validates one."""

    name: str
    base: str
    set: dict[str, Any] = Field(default_factory=dict)
    method: Literal["grid", "random"] = "grid"
    n_trials: int | None = Field(None, ge=1)
    seed: int = 0
    metric: str | None = None
    direction: Literal["minimize", "maximize"] | None = None
    axes: dict[str, Any]
    optional: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    pretrain: PretrainStage | None = None
    storage: str | None = None
    source: str = "<dict>"  # the sweep file (relative paths resolve from its folder)
    _base: dict[str, Any] | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        # the sweep folder is runs/sweeps/<name>: a name must not climb out of it
        return check_name(name, "name")

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, metric: str | None) -> str | None:
        # trials are ranked, reported to Optuna and picked as winners by this metric: never the test split
        if metric is not None and metric.startswith("test/"):
            raise ValueError(
                f"metric {metric!r} is a test metric; a sweep ranks trials on validation (e.g. "
                f"{'val/' + metric.removeprefix('test/')!r}) and --eval-winners K then tests the best K"
            )
        return metric

    @field_validator("axes")
    @classmethod
    def _check_axes(cls, axes: dict[str, Any]) -> dict[str, Any]:
        if not axes:
            raise ValueError("a sweep needs at least one axis")
        for name, values in axes.items():
            if isinstance(values, list):
                if not values:
                    raise ValueError(f"axis {name!r} has no values")
            elif isinstance(values, dict) and _is_range(values):
                if not values["low"] < values["high"]:
                    raise ValueError(f"axis {name!r}: low must be < high")
            elif isinstance(values, dict):
                for label, ov in values.items():
                    if not isinstance(ov, dict):
                        raise ValueError(
                            f"axis {name!r}, label {label!r}: a named axis maps each label to a mapping of "
                            f"overrides (e.g. {{model.freeze: true}}), got {ov!r}"
                        )
            else:
                raise ValueError(
                    f"axis {name!r}: expected a list of values, a range {{low, high, log}} or a mapping "
                    f"label -> overrides, got {values!r}"
                )
        return axes

    @model_validator(mode="after")
    def _check_method(self) -> SweepSpec:
        ranges = [n for n, v in self.axes.items() if isinstance(v, dict) and _is_range(v)]
        if self.method == "grid" and ranges:
            raise ValueError(f"range axes {ranges} need method: random (a grid needs finite values)")
        if self.method == "random" and self.n_trials is None:
            raise ValueError("method: random needs n_trials")
        return self

    # -- paths -------------------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """A path of the sweep file: absolute, relative to the file's folder, or to the working folder."""
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        here = Path(self.source).parent / p
        if here.exists() or not p.exists():
            return here.resolve()
        return p.resolve()

    # -- the trial points ----------------------------------------------------------------------------------

    def points(self) -> list[TrialPoint]:
        """Every trial of the sweep, in order (excluded points removed)."""
        if self.method == "grid":
            names = list(self.axes)
            combos = itertools.product(*(_labels(self.axes[n]) for n in names))
            raw = [dict(zip(names, c, strict=True)) for c in combos]
        else:
            raw = []
            for i in range(self.n_trials or 0):
                rng = random.Random(f"{self.seed}-{i}")
                raw.append({n: _draw(v, rng) for n, v in self.axes.items()})
        points = []
        for params in raw:
            if any(_matches(params, ex) for ex in self.exclude):
                continue
            overrides: dict[str, Any] = {}
            for axis, label in params.items():
                overrides.update(_axis_overrides(axis, self.axes[axis], label))
            points.append(
                TrialPoint(
                    index=len(points),
                    params=params,
                    overrides=overrides,
                    optional=any(_matches(params, op) for op in self.optional),
                )
            )
        if not points:
            raise ConfigError(f"{self.source}: every point of the sweep is excluded")
        return points

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Optuna's description of each axis (what the dashboard and ``trial.params`` show)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for name, values in self.axes.items():
            if isinstance(values, dict) and _is_range(values):
                if _is_int_range(values):
                    out[name] = IntDistribution(
                        int(values["low"]), int(values["high"]), log=bool(values.get("log", False))
                    )
                else:
                    out[name] = FloatDistribution(
                        float(values["low"]), float(values["high"]), log=bool(values.get("log", False))
                    )
            else:
                out[name] = CategoricalDistribution(_labels(values))
        return out

    # -- configs -------------------------------------------------------------------------------------------

    def base_raw(self) -> dict[str, Any]:
        """The base config with the ``set`` overrides, as a raw mapping (the file is read once)."""
        if self._base is None:
            path = self.resolve(self.base)
            if not path.is_file():
                raise ConfigError(f"{self.source}: base config {self.base!r} not found (looked at {path})")
            self._base = apply_overrides(read_yaml_file(path, "base config"), self.set)
        return copy.deepcopy(self._base)

    def trial_config(
        self,
        point: TrialPoint,
        sweep_dir: str | os.PathLike[str] | None = None,
        split_file: str | None = None,
    ) -> ExperimentConfig:
        """The validated config of one trial (the pretraining checkpoint is set by the worker)."""
        overrides = {k: v for k, v in point.overrides.items() if k != PRETRAIN_KEY}
        if self.pretrain is not None and point.pretrain:
            # Validated with a stand-in: the worker sets the stage's real checkpoint before training.
            overrides[self.pretrain.into] = "<checkpoint of the pretraining stage>"
        raw = apply_overrides(self.base_raw(), overrides)
        raw["name"] = _joined_name(raw.get("name", "run"), point.slug)
        if split_file is not None:
            raw = apply_overrides(raw, {"data.split_file": split_file})
        return config_from_dict(raw, source=f"{self.source}, trial {point.slug}")

    def pretrain_config(self, cfg: ExperimentConfig) -> ExperimentConfig:
        """The pretraining stage's config for a trial config ``cfg`` (its :attr:`PretrainStage.share` keys)."""
        if self.pretrain is None:
            raise ConfigError(
                f"{self.source}: a trial asks for 'pretrain' but the sweep has no pretrain section"
            )
        path = self.resolve(self.pretrain.config)
        if not path.is_file():
            raise ConfigError(f"{self.source}: pretrain config {self.pretrain.config!r} not found ({path})")
        raw = read_yaml_file(path, "pretrain config")
        trial = cfg.model_dump(mode="json")
        copied = {}
        for key in self.pretrain.share:
            node: Any = trial
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise ConfigError(
                        f"{self.source}: pretrain.share key {key!r} is not in the trial's config"
                    )
                node = node[part]
            copied[key] = node
        raw = apply_overrides(raw, copied)
        raw["name"] = _joined_name(raw.get("name", "pretrain"), cfg.name)
        return config_from_dict(raw, source=f"{path} (pretraining of {cfg.name})")

    def metric_and_direction(self) -> tuple[str, str]:
        """The ranking metric and ``minimize`` / ``maximize`` (defaults: the base task's monitor)."""
        from tinct.engine.task import TASKS

        task = TASKS.get(str(self.base_raw().get("task")))
        metric = self.metric or task.monitor
        direction = self.direction or ("minimize" if task.monitor_mode == "min" else "maximize")
        return metric, direction


@dataclass
class TrialPoint:
    """One point of a sweep: axis labels (``params``) and the config overrides they stand for."""

    index: int
    params: dict[str, Any]
    overrides: dict[str, Any]
    optional: bool = False
    key: str = field(init=False)

    def __post_init__(self) -> None:
        canon = json.dumps(self.overrides, sort_keys=True, default=str)
        self.key = hashlib.sha1(canon.encode()).hexdigest()[:12]

    @property
    def pretrain(self) -> bool:
        return bool(self.overrides.get(PRETRAIN_KEY, False))

    @property
    def slug(self) -> str:
        """Folder name: ``t003-small_cnn-log``; values of long / odd labels are shortened.

        Only letters, digits, ``.`` and ``_`` of a label are kept (other runs of characters become ``-``),
        and the slug starts with ``t<index>-``: a label such as ``../../x`` names a folder inside the sweep's
        ``runs/``, never a path out of it.
        """
        parts = []
        for v in self.params.values():
            s = label_text(v)
            s = re.sub(r"[^0-9A-Za-z._]+", "-", s).strip("-")
            parts.append(s[:32])
        return f"t{self.index:03d}-" + "-".join(parts)[:80]


def _is_range(v: Mapping[str, Any]) -> bool:
    return "low" in v and "high" in v and all(not isinstance(x, dict) for x in v.values())


def _is_int_range(v: Mapping[str, Any]) -> bool:
    kind = v.get("type")
    if kind is not None:
        return kind == "int"
    return isinstance(v["low"], int) and isinstance(v["high"], int) and not isinstance(v["low"], bool)


def _label(value: Any) -> Any:
    """An Optuna-storable label of an axis value (lists and mappings become their YAML flow text)."""
    if isinstance(value, _SCALARS):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip()


def _labels(values: Any) -> list[Any]:
    if isinstance(values, dict):
        return list(values)
    return [_label(v) for v in values]


def _draw(values: Any, rng: random.Random) -> Any:
    if isinstance(values, dict) and _is_range(values):
        lo, hi = values["low"], values["high"]
        if _is_int_range(values):
            if values.get("log"):
                return int(min(max(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))), lo), hi))
            return rng.randint(int(lo), int(hi))
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if values.get("log") else rng.uniform(lo, hi)
        return float(min(max(x, lo), hi))
    return rng.choice(_labels(values))


def _axis_overrides(axis: str, values: Any, label: Any) -> dict[str, Any]:
    if isinstance(values, dict) and not _is_range(values):
        return dict(values[label])
    if isinstance(values, list):
        for v in values:
            if _label(v) == label:
                return {axis: v}
    return {axis: label}


def _matches(params: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(k in params and label_text(params[k]) == label_text(_label(v)) for k, v in pattern.items())


def _joined_name(head: Any, tail: str) -> str:
    """``<head>-<tail>``, ``head`` shortened so the name stays within :data:`NAME_MAX_BYTES` (tail kept)."""
    head = str(head)
    room = NAME_MAX_BYTES - len(tail.encode("utf-8")) - 1
    while len(head.encode("utf-8")) > room and head:
        head = head[:-1]
    return f"{head.rstrip()}-{tail}" if head.strip() else tail


def label_text(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def load_sweep(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read and validate a sweep file; ``overrides`` (dotted keys) are added to its ``set`` section.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, an axis is malformed, or a trial's
            config does not validate (checked for every point before anything trains).
    """
    p = Path(path)
    raw = read_yaml_file(p, "sweep file")
    if "base" not in raw:
        raise ConfigError(f"{p}: a sweep file needs 'base' (the experiment config every trial starts from)")
    raw.setdefault("name", p.stem.replace(".sweep", ""))
    raw["source"] = str(p.resolve())
    if overrides:
        raw["set"] = {**(raw.get("set") or {}), **dict(overrides)}
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        lines = [f"  {'.'.join(str(x) for x in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()]
        raise ConfigError(f"{p}: invalid sweep file\n" + "\n".join(lines)) from None
    for point in spec.points():  # every trial validates now, not after hours of the first ones
        spec.trial_config(point)
    return spec
