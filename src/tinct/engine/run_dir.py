"""Run directories: everything one run produced, in one folder.

```
RUN_DIR/
  config.yaml          resolved config (defaults included)
  env.json             git commit, package versions, host, command line
  metrics.csv          one row per epoch (train / val metrics, learning rate, time)
  metrics.json         final metrics (best validation + test)
  checkpoints/         last.ckpt, best.ckpt (written atomically)
  figures/             learning_curves.png
```
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.atomic import atomic_write_json
from tinct.core.checks import check_inside
from tinct.core.config import ExperimentConfig, read_yaml_file, save_config
from tinct.core.exceptions import RunDirError, some_of
from tinct.engine.config import config_from_dict

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "RunDir",
    "checkpoint_mismatches",
    "config_changes",
    "environment_info",
    "new_run_path",
    "read_checkpoint",
]

_PACKAGES = ("tinct", "torch", "torchvision", "lightning", "numpy", "pydantic", "opencv-python-headless")


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except Exception:
        return None


def environment_info() -> dict[str, Any]:
    """Where and with what a run was made: git commit of tinct, package versions, host, command line."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import torch

    return {
        "git_commit": _git_commit(),
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "command": sys.argv,
        "started": datetime.now().isoformat(timespec="seconds"),
    }


def new_run_path(cfg: ExperimentConfig) -> Path:
    """``<output_dir>/<name>-<YYYYmmdd-HHMMSS>`` (a numeric suffix if that exists).

    Raises:
        ConfigError: the path is not inside ``output_dir`` (a name with ``/`` or ``..`` that escaped
            validation, e.g. set with ``model_copy(update=...)``).
    """
    base = Path(cfg.output_dir) / f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    check_inside(cfg.output_dir, base, f"run folder of name {cfg.name!r}")
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A Lightning checkpoint of tinct, loaded on the CPU with ``weights_only=True`` (no pickled code runs).

    Raises:
        RunDirError: the file is missing, truncated or not a checkpoint, or holds no ``state_dict``.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise RunDirError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        size = p.stat().st_size
        raise RunDirError(f"{p}: truncated or not a checkpoint ({size} bytes; torch.load: {reason})") from err
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        keys = some_of(list(ckpt)) if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise RunDirError(f"{p}: not a tinct checkpoint (no 'state_dict'; found {keys})")
    return dict(ckpt)


def checkpoint_mismatches(module: nn.Module, state_dict: Mapping[str, Any]) -> list[str]:
    """Why ``state_dict`` would not load strictly into ``module``: missing and unexpected entries and
    tensors of another shape, one line each (empty: it loads)."""
    mine = module.state_dict()
    out = []
    for key, value in mine.items():
        if key not in state_dict:
            out.append(f"{key} is missing from the checkpoint")
            continue
        old = getattr(state_dict[key], "shape", None)
        if old is not None and tuple(old) != tuple(value.shape):
            out.append(f"{key} has shape {tuple(old)} in the checkpoint, {tuple(value.shape)} now")
    out += [f"{key} is in the checkpoint but not in the network" for key in state_dict if key not in mine]
    return out


def config_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two config mappings, as ``key: old -> new``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in dict.fromkeys([*old, *new]):
            dotted = f"{prefix}{key}"
            if key not in old or key not in new:
                out.append(f"{dotted}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
            else:
                out += config_changes(old[key], new[key], dotted + ".")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


class RunDir:
    """A run directory (see the module docstring for its layout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.yaml")
    metrics_csv = property(lambda self: self.path / "metrics.csv")
    metrics_json = property(lambda self: self.path / "metrics.json")
    checkpoints = property(lambda self: self.path / "checkpoints")
    figures = property(lambda self: self.path / "figures")

    def create(self, cfg: ExperimentConfig) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.figures.mkdir(exist_ok=True)
        save_config(cfg, self.config_file)
        atomic_write_json(self.path / "env.json", environment_info())
        return self

    def config(self, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
        """The run's ``config.yaml`` with dotted-key ``overrides``, validated.

        Raises:
            RunDirError: the folder has no ``config.yaml``.
            ConfigError: ``config.yaml`` is not YAML, not a mapping, or has invalid values (file named).
        """
        from tinct.core.config import apply_overrides

        if not self.config_file.is_file():
            raise RunDirError(f"{self.path}: not a tinct run directory (no config.yaml)")
        raw = read_yaml_file(self.config_file, "run config")
        return config_from_dict(apply_overrides(raw, overrides or {}), source=str(self.config_file))

    def checkpoint(self, which: str = "best") -> Path:
        """Path of ``best.ckpt`` or ``last.ckpt`` (``best`` falls back to ``last`` if no best exists)."""
        candidates = [self.checkpoints / f"{which}.ckpt"]
        if which == "best":
            candidates.append(self.checkpoints / "last.ckpt")
        for c in candidates:
            if c.is_file():
                return c
        raise RunDirError(f"{self.path}: no {which} checkpoint in {self.checkpoints}")

    def metrics(self) -> dict[str, Any]:
        if not self.metrics_json.is_file():
            raise RunDirError(f"{self.path}: no metrics.json (run not finished?)")
        return json.loads(self.metrics_json.read_text())
