"""Experiments built from other experiments: derived configs, runs that are trained only once, the shipped
config and sweep files a study starts from.

Studies, cross-validations and sweeps all need to make a run directory a finished run of a config (train
it, resume it, or keep it when it is done) without ever mixing two experiments in one folder.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.config import ExperimentConfig, apply_overrides, parse_overrides
from tinct.core.exceptions import ConfigError
from tinct.engine.config import config_from_dict, load_config
from tinct.engine.run_dir import RunDir
from tinct.engine.train import train

if TYPE_CHECKING:
    from tinct.engine.sweep_spec import SweepSpec

__all__ = [
    "check_same_experiment",
    "ensure_trained",
    "find_shipped",
    "load_base_config",
    "load_study_sweep",
    "with_updates",
]

# Sections that define what a run learns; a finished fold trained with other values is not reused.
_IDENTITY = ("task", "seed", "data", "model", "optim")


def with_updates(cfg: ExperimentConfig, updates: Mapping[str, Any]) -> ExperimentConfig:
    """A validated copy of ``cfg`` with dotted-key ``updates`` (``{"data.fold": 2, "model.freeze": True}``)."""
    raw = apply_overrides(cfg.model_dump(mode="json"), dict(updates))
    return config_from_dict(raw, source=f"{cfg.name} with {', '.join(updates)}")


def check_same_experiment(run: RunDir, cfg: ExperimentConfig) -> None:
    """Refuse a run folder that holds a run of another experiment (task, seed, data, model or optimiser).

    Raises:
        ConfigError: the folder's ``config.yaml`` differs from ``cfg`` in one of those sections.
    """
    if not run.config_file.is_file():
        return
    from tinct.core.config import read_yaml_file

    old = read_yaml_file(run.config_file, "run config")  # a broken file is named, not a bare YAML error
    new = _resolved_like(old, cfg.model_dump(mode="json"), cfg.task)
    for raw in (old, new):  # how many loader processes is a property of the machine, not the experiment
        if isinstance(raw.get("data"), dict):
            raw["data"].pop("num_workers", None)
    diff = [k for k in _IDENTITY if old.get(k) != new.get(k)]
    if diff:
        raise ConfigError(
            f"{run.path} was trained with a different {', '.join(diff)} section than asked for now; "
            "pass another output folder (or delete that one) instead of mixing two experiments"
        )


def _resolved_like(old: dict[str, Any], new: dict[str, Any], task: str) -> dict[str, Any]:
    """``new`` with the fields the task resolves from its data on the first run (``Task.resolved_fields``,
    e.g. a classifier's ``model.classes`` from the class folders) taken from ``old`` where ``new`` leaves
    them unset (None), so asking again for the same experiment is not taken for another one."""
    from tinct.engine.task import TASKS

    try:
        fields = TASKS.get(task).resolved_fields
    except Exception:  # a task that is not installed: nothing to resolve
        return new
    for dotted in fields:
        *parents, leaf = dotted.split(".")
        node_old: Any = old
        node_new: Any = new
        for part in parents:
            node_old = node_old.get(part) if isinstance(node_old, dict) else None
            node_new = node_new.get(part) if isinstance(node_new, dict) else None
        if isinstance(node_old, dict) and isinstance(node_new, dict) and node_new.get(leaf) is None:
            if leaf in node_old:
                node_new[leaf] = node_old[leaf]
    return new


def _train_quietly(
    cfg: ExperimentConfig, run_dir: Path, resume: bool, quiet: bool, test: bool = True
) -> None:
    # Lightning's per-epoch printer writes to stdout; a quiet cross-validation keeps it off the console.
    sink = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with sink:
        train(cfg, run_dir=run_dir, resume=resume, verbose=False, test=test)


def ensure_trained(
    cfg: ExperimentConfig, run_dir: str | os.PathLike[str], quiet: bool = False, test: bool = True
) -> str:
    """Make ``run_dir`` a finished run of ``cfg``: train it, resume it, or leave it as it is.

    ``test=False`` skips the final test-split evaluation of :func:`tinct.engine.train.train`.

    Returns:
        ``"done"`` (finished before: ``metrics.json`` after ``trainer.max_epochs`` epochs), ``"resumed"``
        (continued from ``last.ckpt``) or ``"trained"`` (from scratch).

    Raises:
        ConfigError: ``run_dir`` holds a run of another experiment (data, model, optimiser or seed differ).
    """
    run = RunDir(run_dir)
    check_same_experiment(run, cfg)
    if run.metrics_json.is_file() and run.metrics().get("epochs", -1) >= cfg.trainer.max_epochs:
        return "done"
    resume = (run.checkpoints / "last.ckpt").is_file()
    _train_quietly(cfg, run.path, resume, quiet, test)
    return "resumed" if resume else "trained"


def load_base_config(
    base: str | os.PathLike[str] | ExperimentConfig | None,
    overrides: Sequence[str],
    default: str | os.PathLike[str] | None = None,
) -> ExperimentConfig:
    """A study's base config: a config object (with ``overrides`` applied) or a YAML path, ``default``
    when None; a relative path that does not exist here is also looked up in the source checkout."""
    if isinstance(base, ExperimentConfig):
        cfg = base
        if overrides:
            cfg = with_updates(cfg, parse_overrides(overrides))
        return cfg
    if base is None:
        if default is None:
            raise ConfigError("no base config given and no default")
        base = default
    return load_config(find_shipped(base), list(overrides))


def find_shipped(path: str | os.PathLike[str]) -> Path:
    """``path`` as given, or, when a relative path does not exist here, the file of the source checkout
    (so that the studies' default configs and sweep files work from any folder)."""
    p = Path(path)
    if not p.is_file() and not p.is_absolute():
        repo = Path(__file__).resolve().parents[3] / p
        p = repo if repo.is_file() else p
    return p


def load_study_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """A study's sweep file (:func:`tinct.engine.sweep.load_sweep`), found as :func:`find_shipped` does."""
    from tinct.engine.sweep_spec import load_sweep

    return load_sweep(find_shipped(path))
