"""Sweeps: a base config plus axes, run as Optuna trials (``tinct sweep SWEEP.yaml``).

A sweep file names a base experiment config and the axes to vary; every point of the grid (or every random
draw) is one trial, i.e. one run directory::

    name: illuminant-input-space            # the Optuna study name (default: the file's stem)
    base: mondrian_small_cnn.yaml           # relative to this file
    set: {trainer.max_epochs: 10}           # overrides of every trial
    method: grid                            # grid | random (then n_trials and seed)
    metric: val/angular_mean                # what ranks trials (default: the task's monitor)
    axes:
      model.input_space: [linear, log]      # a config key and its values
      optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (random sweeps only)
      training:                             # a named axis: label -> overrides of that label
        scratch: {}
        contrastive: {pretrain: true, model.freeze: true}
    optional:                               # points skipped by --only-full (partial combinations)
      - {model.input_space: log, training: contrastive}
    exclude:                                # points never run
      - {model.input_space: linear, training: scratch}
    pretrain:                               # a stage that trials with ``pretrain: true`` run first
      config: ../constancy/contrastive_pretrain.yaml
      share: [seed, data, model.backbone, model.width, model.input_space]
      into: model.init                      # gets the stage's last checkpoint

Optuna keeps the trials (SQLite in the sweep folder by default, or any SQLAlchemy URL such as PostgreSQL,
so workers on several machines share one study): a worker claims a waiting trial atomically, trains it
(:func:`tinct.engine.crossval.ensure_trained`, which resumes from ``last.ckpt``), and reports the metric.
A trial that raises is recorded as failed with its error; ``--retry-failed`` queues it again. A trial
whose worker was killed (Ctrl-C, a dead process, a stale heartbeat) is queued again automatically on the
next start and resumes from its last checkpoint, so restarting a killed sweep loses no finished trial and
reruns none. Runs do not look at the test split; ``--eval-winners K`` scores the best K on it.

```
SWEEP_DIR/
  sweep.yaml            the sweep file as run (base resolved to an absolute path)
  sweep.db              Optuna storage (SQLite; absent with --storage URL)
  runs/t000-<labels>/   one run directory per trial, plus trial.json (params, state, error)
  pretrain/<key>/       pretraining runs shared by trials with the same copied settings
  split.json            the fixed splits (--test-split auto)
  results.csv           one row per trial: axes, metrics, time, state, error (--auto-summary)
  figures/              metric by axis, learning curves, error distributions (--analysis)
  winners.csv           the best K trials re-evaluated on the test split (--eval-winners K)
  logs/worker-<i>.log   output of each worker process (--workers N > 1)
```
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from tinct.core.exceptions import ConfigError, TinctError
from tinct.engine.config import (
    ExperimentConfig,
    StrictModel,
    apply_overrides,
    config_from_dict,
    read_yaml_file,
)
from tinct.engine.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = [
    "PretrainStage",
    "SweepSpec",
    "SweepStudy",
    "TrialPoint",
    "eval_winners",
    "load_sweep",
    "open_study",
    "run_sweep",
    "sweep_results",
    "worker_loop",
]

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
        path = self.resolve(self.base)
        if not path.is_file():
            raise ConfigError(f"{self.source}: base config {self.base!r} not found (looked at {path})")
        return apply_overrides(read_yaml_file(path, "base config"), self.set)

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
        raw["name"] = f"{raw.get('name', 'run')}-{point.slug}"
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
        raw["name"] = f"{raw.get('name', 'pretrain')}-{cfg.name}"
        return config_from_dict(raw, source=f"{path} (pretraining of {cfg.name})")

    def metric_and_direction(self) -> tuple[str, str]:
        """The ranking metric and ``minimize`` / ``maximize`` (defaults: the base task's monitor)."""
        from tinct.tasks import TASKS

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
        """Folder name: ``t003-small_cnn-log``; values of long / odd labels are shortened."""
        parts = []
        for v in self.params.values():
            s = _fmt(v)
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


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    from optuna.distributions import IntDistribution

    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def _axis_overrides(axis: str, values: Any, label: Any) -> dict[str, Any]:
    if isinstance(values, dict) and not _is_range(values):
        return dict(values[label])
    if isinstance(values, list):
        for v in values:
            if _label(v) == label:
                return {axis: v}
    return {axis: label}


def _matches(params: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(k in params and _fmt(params[k]) == _fmt(_label(v)) for k, v in pattern.items())


def _fmt(v: Any) -> str:
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


# -- storage -------------------------------------------------------------------------------------------------


def default_storage(sweep_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{(Path(sweep_dir) / 'sweep.db').resolve()}"


@dataclass
class SweepStudy:
    """The sweep's Optuna study and the storage behind it (claiming a trial is a storage operation)."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage


def open_study(spec: SweepSpec, storage: str) -> SweepStudy:
    """Create (or load) the sweep's Optuna study in ``storage`` (a SQLAlchemy URL)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        # Several local workers share one SQLite file: wait for its lock instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        rdb = optuna.storages.RDBStorage(storage, **kwargs)
    except Exception as err:
        raise TinctError(f"cannot open the sweep storage {_safe_url(storage)}: {err}") from err
    _, direction = spec.metric_and_direction()
    study = optuna.create_study(study_name=spec.name, storage=rdb, direction=direction, load_if_exists=True)
    return SweepStudy(study, rdb)


def _safe_url(url: str) -> str:
    # user:password@host -> user:***@host
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"


def _latest_by_key(sw: SweepStudy) -> dict[str, optuna.trial.FrozenTrial]:
    latest: dict[str, Any] = {}
    for t in sw.study.get_trials(deepcopy=False):
        key = t.user_attrs.get("key")
        if key is not None and (key not in latest or t.number > latest[key].number):
            latest[key] = t
    return latest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover_stale(sw: SweepStudy, stale_after: float) -> int:
    """Mark RUNNING trials whose worker is gone as interrupted (they are queued again by :func:`_plan`)."""
    from optuna.trial import TrialState

    storage, n = sw.storage, 0
    host = socket.gethostname()
    for t in sw.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        ua = t.user_attrs
        dead = ua.get("host") == host and not _pid_alive(int(ua.get("pid", -1)))
        beat = float(ua.get("heartbeat", 0) or 0)
        stale = beat and time.time() - beat > stale_after
        if dead or stale:
            why = "its worker process is gone" if dead else f"no heartbeat for {time.time() - beat:.0f} s"
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_user_attr(t._trial_id, "error", f"interrupted: {why}")
            with contextlib.suppress(Exception):
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            n += 1
    return n


def _enqueue(sw: SweepStudy, point: TrialPoint, extra: Mapping[str, Any] | None = None) -> None:
    import optuna

    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING,
        params=None,
        distributions=None,
        user_attrs={
            "key": point.key,
            "index": point.index,
            "slug": point.slug,
            "optional": point.optional,
            "overrides": json.dumps(point.overrides, default=str),
            **(extra or {}),
        },
        system_attrs={"fixed_params": point.params},
    )
    sw.study.add_trial(trial)


def _plan(sw: SweepStudy, points: Sequence[TrialPoint], retry_failed: bool) -> dict[str, int]:
    """Queue every point without a trial; queue again interrupted trials (and failed ones if asked)."""
    from optuna.trial import TrialState

    latest = _latest_by_key(sw)
    counts = {"queued": 0, "requeued": 0, "failed": 0, "done": 0, "elsewhere": 0}
    for p in points:
        t = latest.get(p.key)
        if t is not None and t.state == TrialState.COMPLETE:
            counts["done"] += 1
        elif t is not None and t.state == TrialState.RUNNING:
            counts["elsewhere"] += 1
        if t is None:
            _enqueue(sw, p)
            counts["queued"] += 1
        elif t.state == TrialState.FAIL:
            if t.user_attrs.get("interrupted") or retry_failed:
                _enqueue(sw, p, {"retry_of": t.number})
                counts["requeued"] += 1
            else:
                counts["failed"] += 1
    return counts


def _claim(sw: SweepStudy, keys: set[str], only_full: bool) -> int | None:
    """Atomically take a waiting trial of this plan (lowest number first); None when none is left."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    waiting = sw.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for t in sorted(waiting, key=lambda t: t.number):
        if t.user_attrs.get("key") not in keys or (only_full and t.user_attrs.get("optional")):
            continue
        try:
            if sw.storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                return t._trial_id
        except UpdateFinishedTrialError:
            continue
    return None


# -- running trials ------------------------------------------------------------------------------------------


class _Heartbeat:
    """Writes the time into the trial every ``interval`` seconds, so other machines can tell a dead worker."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int, interval: float = 30.0) -> None:
        self._storage, self._id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):
                self._storage.set_trial_user_attr(self._id, "heartbeat", time.time())

    def __enter__(self) -> _Heartbeat:
        self._storage.set_trial_user_attr(self._id, "heartbeat", time.time())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (a pretraining stage is trained by one worker at a time)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pretrain_dir(sweep_dir: Path, cfg: ExperimentConfig) -> Path:
    ident = json.dumps({k: v for k, v in cfg.model_dump(mode="json").items() if k != "name"}, sort_keys=True)
    return sweep_dir / "pretrain" / hashlib.sha1(ident.encode()).hexdigest()[:12]


def _point_of(spec: SweepSpec, frozen: optuna.trial.FrozenTrial) -> TrialPoint:
    ua = frozen.user_attrs
    return TrialPoint(
        index=int(ua["index"]),
        params=dict(frozen.system_attrs.get("fixed_params", frozen.params)),
        overrides=json.loads(ua["overrides"]),
        optional=bool(ua.get("optional", False)),
    )


def _write_trial_json(run_dir: Path, spec: SweepSpec, number: int, point: TrialPoint, **extra: Any) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "trial.json",
        {"sweep": spec.name, "number": number, "key": point.key, "params": point.params, **extra},
    )


def run_trial(
    sw: SweepStudy,
    trial_id: int,
    spec: SweepSpec,
    sweep_dir: Path,
    *,
    split_file: str | None = None,
    test: bool = False,
    quiet: bool = True,
) -> optuna.trial.FrozenTrial:
    """Train one claimed trial and report it to the study (value, metrics, time; or the error)."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from tinct.engine.callbacks import finite_float
    from tinct.engine.crossval import ensure_trained, with_updates
    from tinct.engine.run_dir import RunDir

    study, storage = sw.study, sw.storage
    frozen = storage.get_trial(trial_id)
    point = _point_of(spec, frozen)
    trial = optuna.trial.Trial(study, trial_id)
    for name, dist in spec.distributions().items():
        # Numeric ranges become Optuna parameters (for its samplers and dashboard). Categorical axes stay in
        # the trial's attributes: Optuna fixes a categorical's choices for good, and a sweep may grow values.
        if not isinstance(dist, CategoricalDistribution):
            _suggest(trial, name, dist)
    storage.set_trial_user_attr(trial_id, "params", point.params)
    run_dir = (sweep_dir / "runs" / point.slug).resolve()
    for k, v in {"host": socket.gethostname(), "pid": os.getpid(), "run_dir": str(run_dir)}.items():
        storage.set_trial_user_attr(trial_id, k, v)
    metric, _ = spec.metric_and_direction()
    t0 = time.perf_counter()
    try:
        with _Heartbeat(storage, trial_id):
            _write_trial_json(run_dir, spec, frozen.number, point, state="RUNNING")
            cfg = spec.trial_config(point, sweep_dir, split_file)
            if point.pretrain:
                assert spec.pretrain is not None
                pre = spec.pretrain_config(cfg)
                pre_dir = _pretrain_dir(sweep_dir, pre)
                with _file_lock(pre_dir.with_suffix(".lock")):
                    ensure_trained(pre, pre_dir, quiet=quiet, test=False)
                ckpt = pre_dir / "checkpoints" / f"{spec.pretrain.checkpoint}.ckpt"
                storage.set_trial_user_attr(trial_id, "pretrain_dir", str(pre_dir))
                cfg = with_updates(cfg, {spec.pretrain.into: str(ckpt.resolve())})
            status = ensure_trained(cfg, run_dir, quiet=quiet, test=test)
            metrics = RunDir(run_dir).metrics()
            value = finite_float(metrics.get(metric))
            if value is None:
                raise TinctError(
                    f"{run_dir}: the run finished without a finite {metric!r} "
                    f"(its metrics: {', '.join(k for k in metrics if '/' in k) or 'none'})"
                )
            for k, v in metrics.items():
                if "/" in k or k in ("epochs", "best_epoch", "train_time_s"):
                    storage.set_trial_user_attr(trial_id, k, v)
            storage.set_trial_user_attr(trial_id, "status", status)
            storage.set_trial_user_attr(trial_id, "time_s", round(time.perf_counter() - t0, 2))
            study.tell(trial, value)
            _write_trial_json(run_dir, spec, frozen.number, point, state="COMPLETE", value=value)
    except KeyboardInterrupt:
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_user_attr(trial_id, "error", "interrupted (Ctrl-C): resumed on the next start")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as err:  # recorded, and the sweep goes on with the next trial
        tb = traceback.format_exception(type(err), err, err.__traceback__)
        message = f"{type(err).__name__}: {err}"
        # Suppressed: the trial may be finished already (declared stale by another worker meanwhile).
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(trial_id, "error", message[:2000])
            storage.set_trial_user_attr(trial_id, "traceback", "".join(tb)[-6000:])
            storage.set_trial_user_attr(trial_id, "time_s", round(time.perf_counter() - t0, 2))
            study.tell(trial, state=TrialState.FAIL)
        with contextlib.suppress(Exception):
            _write_trial_json(run_dir, spec, frozen.number, point, state="FAIL", error=message)
    return storage.get_trial(trial_id)


def worker_loop(
    spec: SweepSpec,
    sweep_dir: str | os.PathLike[str],
    storage: str,
    *,
    only_full: bool = False,
    split_file: str | None = None,
    test: bool = False,
    quiet: bool = True,
    progress: bool = True,
) -> int:
    """Claim and run waiting trials of ``spec`` until none is left; returns how many this worker ran."""
    from optuna.trial import TrialState

    sweep_dir = Path(sweep_dir)
    sw = open_study(spec, storage)
    keys = {p.key for p in spec.points()}
    metric, _ = spec.metric_and_direction()
    n = 0
    while (trial_id := _claim(sw, keys, only_full)) is not None:
        frozen = sw.storage.get_trial(trial_id)
        label = ", ".join(f"{k}={_fmt(v)}" for k, v in frozen.system_attrs.get("fixed_params", {}).items())
        if progress:
            print(f"trial {frozen.number} [{label}] started", flush=True)
        done = run_trial(sw, trial_id, spec, sweep_dir, split_file=split_file, test=test, quiet=quiet)
        n += 1
        if progress:
            if done.state == TrialState.COMPLETE:
                what = f"{metric} {done.value:.4g}"
            else:
                what = f"FAILED: {done.user_attrs.get('error', '?')}"
            print(
                f"trial {done.number} [{label}] {what} ({done.user_attrs.get('time_s', 0):.1f} s)", flush=True
            )
    return n


def _worker_command(sweep_dir: Path, storage: str, only_full: bool, split_file: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "tinct.engine.sweep", str(sweep_dir), "--storage", storage]
    if only_full:
        cmd.append("--only-full")
    if split_file:
        cmd += ["--split-file", split_file]
    return cmd


def _run_workers(
    spec: SweepSpec,
    sweep_dir: Path,
    storage: str,
    workers: int,
    only_full: bool,
    split_file: str | None,
    progress: bool,
) -> None:
    """``workers`` local processes; a worker that dies fails its running trial (with its log's tail)."""
    from optuna.trial import TrialState

    logs = sweep_dir / "logs"
    logs.mkdir(exist_ok=True)
    sw = open_study(spec, storage)
    keys = {p.key for p in spec.points()}
    gpus = _visible_gpus()
    procs: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(i: int) -> None:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        log = logs / f"worker-{i}.log"
        fh = open(log, "ab")
        procs[i] = (
            subprocess.Popen(
                _worker_command(sweep_dir, storage, only_full, split_file),
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            ),
            log,
        )
        fh.close()

    for i in range(workers):
        start(i)
    if progress:
        print(f"{workers} workers started; their output: {logs}/worker-<i>.log", flush=True)
    respawns = 0
    try:
        while procs:
            time.sleep(1.0)
            for i, (proc, log) in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[i]
                if rc == 0:
                    continue
                tail = log.read_text(errors="replace")[-3000:]
                for t in sw.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if (
                        t.user_attrs.get("pid") == proc.pid
                        and t.user_attrs.get("host") == socket.gethostname()
                    ):
                        sw.storage.set_trial_user_attr(
                            t._trial_id, "error", f"worker process died with exit code {rc}\n{tail}"[-2000:]
                        )
                        sw.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                        if progress:
                            print(f"trial {t.number} FAILED: its worker died with exit code {rc}", flush=True)
                waiting = [
                    t
                    for t in sw.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                    if t.user_attrs.get("key") in keys and not (only_full and t.user_attrs.get("optional"))
                ]
                if waiting and respawns < 3 * workers:
                    respawns += 1
                    start(i)
    except KeyboardInterrupt:
        for proc, _ in procs.values():
            proc.send_signal(2)
        for proc, _ in procs.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=60)
        raise


def _visible_gpus() -> list[str]:
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            return [str(i) for i in range(torch.cuda.device_count())]
    return []


# -- results -------------------------------------------------------------------------------------------------


def sweep_results(spec: SweepSpec, sw: SweepStudy) -> pd.DataFrame:
    """One row per trial of the plan (its latest attempt): axes, state, metric, metrics, time, error."""
    import pandas as pd

    latest = _latest_by_key(sw)
    metric, _ = spec.metric_and_direction()
    rows = []
    for p in spec.points():
        t = latest.get(p.key)
        ua = t.user_attrs if t is not None else {}
        row: dict[str, Any] = {
            "number": t.number if t is not None else None,
            "state": t.state.name if t is not None else "NOT_QUEUED",
            "optional": p.optional,
            **{k: v for k, v in p.params.items()},
            metric: t.value if t is not None and t.value is not None else ua.get(metric),
        }
        row.update({k: v for k, v in ua.items() if "/" in k and k != metric})
        row.update(
            {
                "epochs": ua.get("epochs"),
                "time_s": ua.get("time_s"),
                "run_dir": ua.get("run_dir", str(Path("runs") / p.slug)),
                "error": ua.get("error") if t is not None and t.state.name == "FAIL" else None,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def eval_winners(
    spec: SweepSpec, results: pd.DataFrame, k: int, out: Path, progress: bool = True
) -> pd.DataFrame:
    """Score the best ``k`` finished trials (by the sweep's validation metric) on their test split.

    Each winner's ``evaluation.json`` (written by :func:`tinct.engine.evaluate.evaluate`) is reused when it
    is newer than the run's ``metrics.json``. Writes ``winners.csv`` with the rank, the trial's axes, its
    validation metric and every ``test/`` metric.
    """
    import pandas as pd

    from tinct.engine.evaluate import evaluate

    metric, direction = spec.metric_and_direction()
    done = results[results["state"] == "COMPLETE"].dropna(subset=[metric])
    done = done.sort_values(metric, ascending=direction == "minimize").head(k)
    rows = []
    for rank, (_, r) in enumerate(done.iterrows(), start=1):
        run_dir = Path(r["run_dir"])
        ev = run_dir / "evaluation.json"
        if ev.is_file() and ev.stat().st_mtime >= (run_dir / "metrics.json").stat().st_mtime:
            test = {k2: v for k2, v in json.loads(ev.read_text()).items() if k2.startswith("test/")}
        else:
            if progress:
                print(f"winner {rank}: testing trial {r['number']} ({run_dir})", flush=True)
            test = evaluate(run_dir)
        rows.append(
            {
                "rank": rank,
                "number": r["number"],
                **{a: r[a] for a in spec.axes},
                metric: r[metric],
                **test,
                "run_dir": str(run_dir),
            }
        )
    table = pd.DataFrame(rows)
    atomic_write_text(out / "winners.csv", table.to_csv(index=False))
    return table


# -- the command ---------------------------------------------------------------------------------------------


def _snapshot(spec: SweepSpec, sweep_dir: Path) -> None:
    raw = spec.model_dump(mode="json", exclude={"source"})
    raw["base"] = str(spec.resolve(spec.base))
    if spec.pretrain is not None:
        raw["pretrain"]["config"] = str(spec.resolve(spec.pretrain.config))
    text = f"# copied from {spec.source}\n" + yaml.safe_dump(raw, sort_keys=False)
    target = sweep_dir / "sweep.yaml"
    if target.is_file():
        old = yaml.safe_load(target.read_text()) or {}
        changed = [k for k in ("base", "set", "pretrain") if old.get(k) != raw.get(k)]
        if changed:
            raise ConfigError(
                f"{sweep_dir}: this sweep was started with a different {', '.join(changed)} "
                f"(see {target}); use another --out for another experiment (new axis values are fine)"
            )
    atomic_write_text(target, text)


def run_sweep(
    sweep_file: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int = 1,
    storage: str | None = None,
    only_full: bool = False,
    retry_failed: bool = False,
    test_split: str | None = None,
    auto_summary: bool = False,
    analysis: bool = False,
    eval_winners_k: int = 0,
    overrides: Mapping[str, Any] | None = None,
    stale_after: float = 600.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) a sweep and return its results table (also ``results.csv`` with ``auto_summary``).

    Args:
        sweep_file: the sweep YAML (see the module docstring).
        out: the sweep folder (default ``runs/sweeps/<name>``); an existing one is resumed.
        workers: local worker processes (1: trials run in this process, one after the other).
        storage: a SQLAlchemy URL shared by workers on several machines (default: SQLite in ``out``).
        only_full: skip the points the sweep file marks ``optional``.
        retry_failed: queue failed trials again (interrupted ones always are).
        test_split: ``"auto"``: every trial uses the splits written once to ``out/split.json``.
        auto_summary: write ``results.csv``; analysis: also the figures under ``out/figures``.
        eval_winners_k: score the best K trials on the test split (``winners.csv``).
        overrides: dotted keys added to the sweep's ``set`` section.
        stale_after: seconds without a heartbeat after which a running trial of another machine is
            considered dead and queued again.
        progress: print a line per trial.
    """
    spec = load_sweep(sweep_file, overrides)
    sweep_dir = Path(out) if out is not None else Path("runs") / "sweeps" / spec.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _snapshot(spec, sweep_dir)
    url = storage or spec.storage or default_storage(sweep_dir)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if test_split not in (None, "auto"):
        raise ConfigError(f"--test-split must be 'auto', got {test_split!r}")
    split_file = str((sweep_dir / "split.json").resolve()) if test_split == "auto" else None
    if split_file is not None:
        spec.trial_config(spec.points()[0], sweep_dir, split_file)  # the task supports data.split_file
    sw = open_study(spec, url)
    recovered = _recover_stale(sw, stale_after)
    points = spec.points()
    counts = _plan(sw, points, retry_failed)
    if progress:
        print(
            f"sweep {spec.name}: {len(points)} trials ({counts['done']} done, "
            + (f"{counts['elsewhere']} running elsewhere, " if counts["elsewhere"] else "")
            + f"{counts['queued']} new, {counts['requeued']} queued again"
            + (f", {recovered} interrupted before" if recovered else "")
            + (
                f", {counts['failed']} failed before: --retry-failed runs them again"
                if counts["failed"]
                else ""
            )
            + f") -> {sweep_dir}",
            flush=True,
        )
    if workers == 1:
        worker_loop(spec, sweep_dir, url, only_full=only_full, split_file=split_file, progress=progress)
    else:
        _run_workers(spec, sweep_dir, url, workers, only_full, split_file, progress)
    results = sweep_results(spec, sw)
    if auto_summary or analysis or eval_winners_k:
        atomic_write_text(sweep_dir / "results.csv", results.to_csv(index=False))
    if analysis:
        from tinct.engine.results_plots import plot_results

        plot_results(results, sweep_dir / "figures", metric=spec.metric_and_direction()[0])
    if eval_winners_k:
        eval_winners(spec, results, eval_winners_k, sweep_dir, progress)
    if progress:
        states = results["state"].value_counts().to_dict()
        print(f"sweep {spec.name}: " + ", ".join(f"{v} {k.lower()}" for k, v in states.items()), flush=True)
    return results


def _main(argv: Sequence[str] | None = None) -> int:
    """A worker process of :func:`run_sweep` (``python -m tinct.engine.sweep SWEEP_DIR --storage URL``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m tinct.engine.sweep")
    p.add_argument("sweep_dir")
    p.add_argument("--storage", required=True)
    p.add_argument("--only-full", action="store_true")
    p.add_argument("--split-file")
    args = p.parse_args(argv)
    sweep_dir = Path(args.sweep_dir)
    spec = load_sweep(sweep_dir / "sweep.yaml")
    worker_loop(spec, sweep_dir, args.storage, only_full=args.only_full, split_file=args.split_file)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
