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
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from tinct.core.atomic import atomic_write_json
from tinct.core.config import ExperimentConfig, save_config
from tinct.core.exceptions import RunDirError
from tinct.engine.config import config_from_dict

__all__ = ["RunDir", "environment_info", "new_run_path"]

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
    """``<output_dir>/<name>-<YYYYmmdd-HHMMSS>`` (a numeric suffix if that exists)."""
    base = Path(cfg.output_dir) / f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


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
        from tinct.core.config import apply_overrides

        if not self.config_file.is_file():
            raise RunDirError(f"{self.path}: not a tinct run directory (no config.yaml)")
        raw = yaml.safe_load(self.config_file.read_text())
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
