"""Pretrained weights shipped with tinct, each tied to the recipe that made it and the metrics it reached.

As in torchvision, a weights entry is a dataclass naming its file; the file's model card (a JSON file
beside it) records the exact commands that trained and exported it, the data, and measured metrics. The
only weights loaded without a user-named file are these, stored inside the package: nothing is downloaded.

Exported colorizer files (``.pt``) hold ``{"format", "config", "state_dict"}``: the run's resolved config
(enough to rebuild the network and its decoding) and the network's weights in float16 (half the size;
predicted ab moved by at most 0.14 CIELAB units on six photos), batch-norm statistics in float32 (their
variances can exceed float16's range). They load with
``torch.load(weights_only=True)``. Runs of the ``colorization`` and ``instance_colorization`` tasks export
alike; a fusion-stage run's file holds its whole :class:`~tinct.colorization.instance.InstanceFusionNet`
(full-image, instance and fusion networks) and loads as an
:class:`~tinct.colorization.instance.InstanceColorizer`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tinct.core.atomic import atomic_torch_save, atomic_write_json
from tinct.core.exceptions import RunDirError
from tinct.engine.modelfile import ShippedModel

__all__ = [
    "DEFAULT_COLORIZER",
    "ECCV16_COLORIZER",
    "INSTANCE_COLORIZER",
    "SIGGRAPH17_COLORIZER",
    "PretrainedWeights",
    "export_colorizer",
    "load_colorizer_file",
]

FORMAT = "tinct-colorizer-v1"
#: The tasks whose runs are colorizers (export and load).
COLORIZER_TASKS = ("colorization", "instance_colorization")


@dataclass(frozen=True)
class PretrainedWeights(ShippedModel):
    """A colorizer file inside the package (``tinct/colorization/weights``) and its model card."""

    package: str = "tinct.colorization"


ECCV16_COLORIZER = PretrainedWeights(
    name="eccv16_w025_photos",
    file="colorization_eccv16_w025_photos.pt",
    description="ECCV16 colorizer at width 0.25 (2 M parameters), classification with class rebalancing, "
    "trained on the 167 photos of tinct's reference set by configs/colorization/eccv16_photos.yaml",
)
SIGGRAPH17_COLORIZER = PretrainedWeights(
    name="siggraph17_w025_photos",
    file="colorization_siggraph17_w025_photos.pt",
    description="SIGGRAPH17 colorizer at width 0.25 (2.2 M parameters), automatic or with colour hints, "
    "trained on every development photo (photos, flowers, COCO128) by "
    "configs/colorization/siggraph17_photos.yaml",
)
INSTANCE_COLORIZER = PretrainedWeights(
    name="instance_w025_coco128",
    file="colorization_instance_w025_coco128.pt",
    description="InstColorization (full-image + instance SIGGRAPH17 networks at width 0.25, fused at 13 "
    "stages) trained on COCO128 with its boxes by configs/colorization/instance_{full,instance,fusion}.yaml",
)
#: What ``tinct colorize`` uses without ``--model``: the better of the shipped automatic colorizers on the
#: 364 validation photos of configs/colorization/siggraph17_photos.yaml at full resolution (rebalanced AuC
#: 59.87 vs 57.59 %, PSNR 19.11 vs 18.41 dB; grayscale 55.23 / 18.57; see the README).
DEFAULT_COLORIZER = SIGGRAPH17_COLORIZER


def export_colorizer(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    card: dict[str, Any] | None = None,
    *,
    evaluate: bool = False,
) -> Path:
    """Write a colorization run's (best) network as a compact weights file, plus its model card.

    The card records the source, parameter count, config, the run's training metrics (for a run
    directory) and ``card``'s entries. With ``evaluate=True`` the exported file itself is scored on the
    run's held-out test photos at full resolution (:func:`tinct.colorization.colorize.evaluate_colorization`),
    recorded as ``test_metrics`` (an instance-colorization run's also inside the boxes of its photos).

    Args:
        run: a colorization or instance-colorization run directory or checkpoint.
        out: the ``.pt`` file to write; the card goes to the same path with ``.json``.
        card: extra entries for the card (recipe, notes ...).
        evaluate: also measure the exported weights on the run's test split.
    """
    from tinct.colorization.colorize import evaluate_colorization, load_colorizer

    colorizer, info = load_colorizer(run)
    state = {k: _compact(k, v) for k, v in colorizer.net.state_dict().items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": FORMAT, "config": info["config"], "state_dict": state}, out)
    entries: dict[str, Any] = {
        "format": FORMAT,
        "source": str(run),
        "parameters": sum(p.numel() for p in colorizer.net.parameters()),
        "file_bytes": out.stat().st_size,
        "config": info["config"],
    }
    metrics_file = Path(run) / "metrics.json"
    if metrics_file.is_file():
        entries["training"] = json.loads(metrics_file.read_text())
    if evaluate:
        from tinct.colorization.task import ColorizationDataModule
        from tinct.engine.config import config_from_dict

        cfg = config_from_dict(info["config"], source=str(run))
        boxes = None
        if cfg.task == "instance_colorization":  # also scored inside the boxes of its photos
            from tinct.colorization.instance_data import InstanceDataModule

            data: ColorizationDataModule = InstanceDataModule(cfg)  # type: ignore[arg-type]
            boxes = data.box_source()  # type: ignore[attr-defined]
        else:
            data = ColorizationDataModule(cfg)  # type: ignore[arg-type]
        splits = data.resolve_splits()
        entries["test_photos"] = [str(p) for p in splits["test"]]
        entries["test_metrics"] = evaluate_colorization(
            out, splits["test"], None, progress=False, boxes=boxes
        )
    atomic_write_json(out.with_suffix(".json"), {**entries, **(card or {})})
    return out


def _compact(key: str, value: torch.Tensor) -> torch.Tensor:
    """A weight in float16, except batch-norm statistics and values float16 cannot hold (kept in float32): a
    SIGGRAPH17 network's block-7 running variance reaches 5.6e5, beyond float16's 65504, and became inf."""
    if not value.is_floating_point() or key.endswith(("running_mean", "running_var")):
        return value
    half = value.half()
    return half if torch.isfinite(half).all() else value


def _colorizer_from_config(config: Any, source: Path, temperature: float | None) -> Any:
    """Network and decoding of an exported file's config, without the training stack (no Lightning): a
    :class:`~tinct.colorization.networks.Colorizer`, or for an instance-colorization run of stage ``fusion``
    an :class:`~tinct.colorization.instance.InstanceColorizer`."""
    from tinct.colorization.networks import COLORIZERS, Colorizer

    try:
        if config["task"] not in COLORIZER_TASKS:
            raise RunDirError(f"{source}: holds a {config['task']!r} model, not a colorizer")
        model, data = config["model"], config["data"]
        arch = model.get("arch", "eccv16")
        t = float(model.get("temperature", 0.38)) if temperature is None else temperature
        decoding = (
            t, float(data.get("l_cent", 50.0)), float(data.get("l_norm", 100.0)),
            int(model.get("infer_size", 256)),
        )  # fmt: skip
        if config["task"] == "instance_colorization" and model.get("stage") == "fusion":
            from tinct.colorization.instance import InstanceColorizer, InstanceFusionNet

            net = InstanceFusionNet(
                float(model["width"]),
                int(model.get("crop_size", 64)),
                int(model.get("fusion_inner", 16)),
                str(model.get("fusion_style", "tinct")),
            )
            return InstanceColorizer(net, *decoding)
        net = COLORIZERS.get(arch)(width=float(model["width"]), head=model["head"])
        colorizer = Colorizer(net, *decoding)
    except (KeyError, TypeError, ValueError) as err:
        raise RunDirError(f"{source}: invalid colorizer config ({err!r})") from err
    return colorizer


def load_colorizer_file(
    path: str | os.PathLike[str], temperature: float | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild a colorizer from an exported weights file (see :func:`export_colorizer`).

    Only the network is built (no Lightning import), so ``tinct colorize`` starts in a few seconds.
    """
    p = Path(path)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunDirError(f"{p}: cannot load weights ({err})") from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise RunDirError(f"{p}: not a tinct colorizer file (expected format {FORMAT!r})")
    colorizer = _colorizer_from_config(blob.get("config"), p, temperature)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    try:
        colorizer.net.load_state_dict(state)
    except RuntimeError as err:
        raise RunDirError(f"{p}: weights do not fit the network of its config ({err})") from err
    return colorizer.eval(), {"config": blob["config"]}
