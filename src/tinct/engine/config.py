"""Experiment configs by task: a YAML file validated by the config class of the task it names.

An experiment config names a ``task``; the task's own ``Config`` class (a subclass of
:class:`tinct.core.config.ExperimentConfig` with typed ``data`` and ``model`` sections, found through the
task registry) validates the whole file, so a typo in any key is an error that names the file and the
field, not a silently ignored setting. The base classes and ``--set`` overrides live in
:mod:`tinct.core.config`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from tinct.core.config import ExperimentConfig, apply_overrides, parse_overrides, read_yaml_file
from tinct.core.exceptions import ConfigError

__all__ = ["config_from_dict", "load_config"]


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> ExperimentConfig:
    """Validate a raw mapping against its task's config class."""
    from tinct.engine.task import TASKS

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    if "task" not in raw:
        raise ConfigError(f"{source}: missing key 'task'; valid tasks: {', '.join(TASKS.names())}")
    try:
        task_cls = TASKS.get(str(raw["task"]))
    except Exception as err:
        raise ConfigError(f"{source}: {err}") from None
    try:
        return task_cls.Config.model_validate(dict(raw))
    except ValidationError as err:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            + (
                f" (got {e['input']!r})"
                if e["type"] != "missing" and not isinstance(e["input"], dict)
                else ""
            )
            for e in err.errors()
        ]
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines)) from None


def load_config(
    path: str | os.PathLike[str], overrides: Iterable[str] | Mapping[str, Any] = ()
) -> ExperimentConfig:
    """Load a YAML experiment config, apply overrides, validate it against its task's schema.

    Raises:
        ConfigError: the file is missing or not YAML, or a key or value is invalid (file and field named).
    """
    raw = read_yaml_file(path, "config file")
    ov = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
    return config_from_dict(apply_overrides(raw, ov), source=str(path))
