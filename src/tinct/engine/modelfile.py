"""One file per trained model: any task's network and config, loadable without its run directory.

A run directory holds checkpoints with optimizer state, logs and figures; to hand a model to someone, or to
ship it inside the package, one file is enough. :func:`export_model` writes ``{"format": "tinct-model-v1",
"config", "state_dict"}``: the run's resolved config (which rebuilds the task, so its network and
preprocessing) and the task's weights. :func:`load_model` takes that file, a run directory or a
checkpoint alike, always with ``torch.load(weights_only=True)``.

Colorizers have their own compact file format (:mod:`tinct.colorization.pretrained`), which also builds
without Lightning; this one serves every task.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tinct.core.atomic import atomic_torch_save
from tinct.core.exceptions import ConfigError, RunDirError, some_of

__all__ = [
    "MODEL_FORMAT",
    "OnnxModel",
    "ShippedModel",
    "export_model",
    "graph_metadata",
    "load_model",
    "task_from_checkpoint",
]

MODEL_FORMAT = "tinct-model-v1"


@dataclass(frozen=True)
class ShippedModel:
    """A model file inside the package (``<package>/weights/<file>``) and its model card (``<file stem>.json``),
    as torchvision's weights entries: the card records the commands that trained and exported it, the data
    and the measured metrics. Shipped files are the only models loaded without a user-named file; nothing
    is downloaded."""

    name: str
    file: str
    description: str
    package: str = ""

    def path(self) -> Path:
        """Location of the file (inside the installed package)."""
        path = Path(str(resources.files(self.package) / "weights" / self.file))
        if not path.is_file():
            raise RunDirError(f"{path}: the shipped model {self.name!r} is missing from this installation")
        return path

    def card(self) -> dict[str, Any]:
        """The model card: recipe commands, training data, measured metrics."""
        return json.loads(self.path().with_suffix(".json").read_text())


def task_from_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The task of a training checkpoint (``.ckpt``), rebuilt from the config the checkpoint carries.

    Raises:
        RunDirError: missing, truncated, or not a tinct checkpoint (no ``tinct_config``).
        ConfigError: its config is invalid or does not build the network it holds.
    """
    from tinct.engine.run_dir import read_checkpoint

    ckpt = read_checkpoint(path)
    if "tinct_config" not in ckpt:
        raise RunDirError(f"{path}: not a tinct checkpoint (no tinct_config)")
    return _build(ckpt["tinct_config"], ckpt["state_dict"], Path(path))


def _build(config: Any, state: Any, source: Path) -> Any:
    from tinct.engine.config import config_from_dict
    from tinct.engine.run_dir import checkpoint_mismatches
    from tinct.engine.task import TASKS

    cfg = config_from_dict(config, source=str(source))
    task = TASKS.get(cfg.task)(cfg)
    problems = checkpoint_mismatches(task, state)
    if problems:
        raise ConfigError(
            f"{source}: its weights do not fit its config's network: {some_of(problems, 3, sep='; ')}"
        )
    task.load_state_dict(state)
    return task.eval()


def graph_metadata(format: str, kind: str, source: str, config: Any) -> dict[str, str]:
    """The entries every graph of ``tinct export`` carries first: ``tinct.format``, ``tinct.kind``,
    ``tinct.source`` and ``tinct.config`` (the run's config as JSON, from which a graph rebuilds its task:
    :class:`OnnxModel`); each kind adds its own.

    Example:
        >>> graph_metadata("tinct-x-graph-v1", "x", "run", {"task": "x"})["tinct.config"]
        '{"task": "x"}'
    """
    return {
        "tinct.format": format,
        "tinct.kind": kind,
        "tinct.source": source,
        "tinct.config": json.dumps(config),
    }


class OnnxModel:
    """A graph of ``tinct export --format onnx`` run by onnxruntime (CPU), in place of its task: ``cfg`` (the
    run's config, from the graph's metadata), ``device``, ``eval()`` / ``to("cpu")``, and a call on one tensor
    (graphs of one input: illuminant estimators) or on a dict of tensors named as the graph's inputs (patch
    models); it returns the graph's first output as a CPU tensor.

    Raises:
        RunDirError: the file is not a graph written by ``tinct export`` (no config in its metadata).
        DataError: not an ONNX model (named).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import torch

        from tinct.engine.config import config_from_dict
        from tinct.nn.export import onnx_session, read_onnx_metadata

        self.path = Path(path)
        self.session = onnx_session(self.path)
        meta = read_onnx_metadata(self.session)
        if "tinct.config" not in meta:
            raise RunDirError(
                f"{path}: an ONNX model without tinct's config in its metadata (not written by tinct export)"
            )
        self.cfg = config_from_dict(json.loads(meta["tinct.config"]), source=str(path))
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.device = torch.device("cpu")

    def eval(self) -> OnnxModel:
        return self

    def to(self, device: Any) -> OnnxModel:
        import torch

        if torch.device(device).type != "cpu":
            raise ConfigError(
                f"{self.path}: an ONNX graph runs in onnxruntime on the CPU here, not on {device}"
            )
        return self

    def __call__(self, x: Any) -> Any:
        from tinct.nn.export import run_onnx

        feeds = dict(x) if isinstance(x, dict) else {self.inputs[0]: x}
        return run_onnx(self.session, feeds, name=str(self.path))[0]


def load_model(source: str | os.PathLike[str], checkpoint: str = "best") -> Any:
    """The trained task of a run directory (its ``best`` or ``last`` checkpoint), a checkpoint (``.ckpt``)
    or a model file of :func:`export_model`, in eval mode on the CPU; an ``.onnx`` graph of ``tinct export``
    as an :class:`OnnxModel`.

    Raises:
        RunDirError: no such path, or a file that is not a tinct model (named, with what was found).
        ConfigError: the config is invalid or does not build the network the weights are for.
    """
    import torch

    p = Path(source)
    if p.is_dir():
        from tinct.engine.evaluate import load_task

        return load_task(p, checkpoint)
    if not p.is_file():
        raise RunDirError(f"{p}: no such run directory or model file")
    if p.suffix == ".ckpt":
        return task_from_checkpoint(p)
    if p.suffix == ".onnx":
        return OnnxModel(p)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or corrupt files
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise RunDirError(f"{p}: truncated or not a tinct model file ({reason})") from err
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise RunDirError(f"{p}: not a tinct model file (expected format {MODEL_FORMAT!r}, found {found!r})")
    if not isinstance(blob.get("state_dict"), dict):
        raise RunDirError(f"{p}: model file without weights (no 'state_dict')")
    return _build(blob.get("config"), blob["state_dict"], p)


def export_model(
    source: str | os.PathLike[str], out: str | os.PathLike[str], checkpoint: str = "best"
) -> Path:
    """Write a run's (``best``) model as one file: ``{"format", "config", "state_dict"}`` (float32).

    Args:
        source: a run directory, checkpoint or model file.
        out: the file to write (atomically; its folder is made).

    Example:
        >>> import tempfile
        >>> import torch
        >>> from tinct.engine.config import config_from_dict
        >>> from tinct.engine.task import TASKS
        >>> cfg = config_from_dict({"task": "illuminant", "model": {"backbone": "small_cnn", "width": 4}})
        >>> task = TASKS.get("illuminant")(cfg)
        >>> d = Path(tempfile.mkdtemp())
        >>> path = _save(task, d / "model.pt")
        >>> restored = load_model(path)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> bool(torch.equal(restored(x), task.eval()(x)))
        True
    """
    task = load_model(source, checkpoint)
    return _save(task, Path(out))


def _save(task: Any, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in task.state_dict().items()}
    blob = {"format": MODEL_FORMAT, "config": task.cfg.model_dump(mode="json"), "state_dict": state}
    atomic_torch_save(blob, out)
    return out
