"""The three training stages of instance-aware colorization (Su, Chu & Huang, CVPR 2020) as one task.

``task: instance_colorization`` trains SIGGRAPH17 networks (:mod:`tinct.colorization.siggraph`, automatic
colorization with optional simulated hints, ``data.hints``) in the paper's order, ``model.stage``:

- ``full``: the full-image network on random whole-photo crops, exactly the ``colorization`` task with
  ``arch: siggraph17`` (starting from ``model.init``, e.g. tinct's shipped SIGGRAPH17 colorizer);
- ``instance``: the instance network on the objects' boxes, each box cropped from its photo and resized to
  ``model.crop_size`` x ``model.crop_size`` (:func:`~tinct.colorization.instance.crop_instances`, the crops
  the fusion network makes), with random horizontal flips; validation and test use the boxes of the
  validation and test photos; it starts from ``model.init`` (stage 1's run);
- ``fusion``: an :class:`~tinct.colorization.instance.InstanceFusionNet` whose full-image network starts
  from ``model.init`` (stage 1) and instance network from ``model.instance_init`` (stage 2), trained on
  whole photos with their boxes. With ``model.freeze_instance`` (the default, as the paper, which trains
  only the fusion generator) the instance network is frozen and stays in eval mode; the full-image network
  and the 13 fusion modules learn.

Photos are split as by the ``colorization`` task (each folder of ``data.root`` on its own, by a hash of the
file names with ``data.val_fraction``, ``data.test_fraction`` and ``data.split_seed``), so with the same
values every stage tests on the same photos. Boxes come from ``data.boxes`` (a box source spec,
:func:`~tinct.colorization.boxes.open_box_source`; default ``<root>/labels`` of each folder) and are read at
the photo's resolution after its resize to ``data.resize``. In the fusion stage a training sample is a
random ``data.crop`` square (an evaluation sample: the centre ``data.eval_size`` square) with its boxes cut
to it (:func:`~tinct.colorization.instance_data.crop_boxes`) and selected as the paper (score above
``data.min_score``, at most ``data.top_k``); a photo without boxes stays in, and the fusion network then equals the full-image network.

Every stage has the SIGGRAPH17 loss and the colorization metrics (raw / rebalanced AuC pooled over pixels,
PSNR, colourfulness); the fusion stage adds the same inside the boxes: ``auc_raw_boxes``,
``auc_rebalanced_boxes`` (pooled over the pixels inside a box) and ``psnr_boxes`` (mean over the photos
with boxes). The best checkpoint is chosen by the whole image's ``val/auc_rebalanced``.

References:
    Su, J.-W., Chu, H.-K., & Huang, J.-B. (2020). Instance-aware Image Colorization. CVPR 2020, section 3.4
    (the three training stages) and the authors' release (github.com/ericsujw/InstColorization).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor
from torchmetrics import Metric

from tinct.colorization.boxes import MIN_SCORE, TOP_K
from tinct.colorization.instance_data import InstanceDataModule, box_mask
from tinct.colorization.networks import Colorizer
from tinct.colorization.task import (
    ColorizationConfig,
    ColorizationDataConfig,
    ColorizationModelConfig,
    ColorizationTask,
    initial_state,
    load_network,
)
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError
from tinct.engine.task import TASKS

__all__ = [
    "InstanceColorizationConfig",
    "InstanceColorizationTask",
    "InstanceDataConfig",
    "InstanceModelConfig",
    "siggraph_weights",
]

Stage = Literal["full", "instance", "fusion"]


class InstanceDataConfig(ColorizationDataConfig):
    """Photos with object boxes: the colorization data settings plus where the boxes are.

    ``kind`` is ``folder`` (``root``: one folder or a list, each split on its own). ``boxes``: a box source
    spec (:func:`~tinct.colorization.boxes.open_box_source`: a YOLO label folder, a dataset folder with
    ``labels/``, a COCO or per-image JSON file), or a list of one per folder of ``root``; default: each
    folder's ``labels/`` subfolder. ``min_score`` / ``top_k``: the boxes a fusion sample keeps (score above
    ``min_score``, best ``top_k``; the paper's 0.7 and 8); the instance stage trains on every box scoring
    above ``min_score``.
    """

    kind: Literal["folder"] = "folder"  # type: ignore[assignment]
    boxes: str | list[str] | None = None
    min_score: float = Field(MIN_SCORE, ge=0, lt=1)
    top_k: int = Field(TOP_K, ge=1)

    @model_validator(mode="after")
    def _check_boxes(self) -> InstanceDataConfig:
        if isinstance(self.boxes, list) and len(self.boxes) != len(self.roots):
            raise ValueError(
                f"data.boxes lists {len(self.boxes)} box source(s) for {len(self.roots)} folder(s) of "
                "data.root: give one per folder, or one for all"
            )
        return self


class InstanceModelConfig(ColorizationModelConfig):
    """The SIGGRAPH17 networks of one stage and where their weights start from.

    Everything of the colorization model section (``arch`` must be ``siggraph17`` and ``head``
    ``regression``), plus: ``stage`` (``full``, ``instance`` or ``fusion``); ``init``: a colorization run
    folder, checkpoint (``.ckpt``) or exported colorizer (``.pt``) whose SIGGRAPH17 network starts the
    stage's network (stage ``fusion``: its full-image network; from a fusion run, its full-image network,
    or for stage ``instance`` its instance network), None: random weights; ``instance_init`` (stage
    ``fusion`` only): the same for the instance network, normally the instance stage's run (None: random);
    ``crop_size``: side of the instance crops (multiple of 8); ``fusion_inner``: channels of the fusion
    modules' weight nets; ``freeze_instance`` (stage ``fusion``): keep the instance network fixed, in eval
    mode; ``fusion_style`` (stage ``fusion``): ``tinct``, or ``instcolorization``, the authors' release
    exactly, which ``tinct import-weights instcolorization`` writes
    (:class:`~tinct.colorization.instance.InstanceFusionNet`). The paths are read when training starts, so a
    config may name a run that does not exist yet.
    """

    arch: Literal["siggraph17"] = "siggraph17"  # type: ignore[assignment]
    head: Literal["regression"] = "regression"  # type: ignore[assignment]
    stage: Stage = "full"
    instance_init: str | None = None
    crop_size: int = Field(64, ge=8)
    fusion_inner: int = Field(16, ge=1)
    freeze_instance: bool = True
    fusion_style: Literal["tinct", "instcolorization"] = "tinct"

    @model_validator(mode="after")
    def _check_stage(self) -> InstanceModelConfig:
        if self.crop_size % 8:
            raise ValueError(
                f"model.crop_size must be a multiple of 8 (the network's stride), got {self.crop_size}"
            )
        if self.instance_init is not None and self.stage != "fusion":
            raise ValueError(
                f"model.instance_init is for stage 'fusion' (stage {self.stage!r} has one network: use model.init)"
            )
        return self


class InstanceColorizationConfig(ColorizationConfig):
    """An ``instance_colorization`` experiment: one stage (``model.stage``) on photos with boxes."""

    task: Literal["instance_colorization"] = "instance_colorization"  # type: ignore[assignment]
    data: InstanceDataConfig  # type: ignore[assignment]
    model: InstanceModelConfig = InstanceModelConfig()  # type: ignore[assignment]


# -- initial weights ---------------------------------------------------------------------------------------


def siggraph_weights(
    source: str | os.PathLike[str], part: Literal["full", "instance"] = "full", what: str = "model.init"
) -> dict[str, Tensor]:
    """The SIGGRAPH17 network's state dict in a colorization run folder, checkpoint or exported ``.pt``
    (from a fusion-stage source, its ``part`` network), float32.

    Raises:
        RunDirError: ``source`` does not exist or holds no colorizer.
        ConfigError: its network is not a SIGGRAPH17 one.
    """
    state = initial_state(source, part, what)
    if "regressor.0.weight" not in state:  # the SIGGRAPH17 regression head
        raise ConfigError(f"{source}: {what} holds no SIGGRAPH17 network (arch: siggraph17 is needed)")
    return state


# -- task -------------------------------------------------------------------------------------------------


@TASKS.register("instance_colorization")
class InstanceColorizationTask(ColorizationTask):
    """One stage of InstColorization (``model.stage``); see the module's description.

    ``net`` is a :class:`~tinct.colorization.siggraph.SIGGRAPHNet` (stages ``full`` and ``instance``) or an
    :class:`~tinct.colorization.instance.InstanceFusionNet` (``fusion``). ``model.init`` /
    ``model.instance_init`` are loaded when training starts (:meth:`load_initial_weights`), not when a
    finished run is loaded, and not when a run resumes from its checkpoint.

    Example:
        >>> cfg = InstanceColorizationConfig(
        ...     data=InstanceDataConfig(root="photos"), model=InstanceModelConfig(width=0.125, stage="fusion")
        ... )
        >>> task = InstanceColorizationTask(cfg)
        >>> type(task.net).__name__, type(task.colorizer()).__name__
        ('InstanceFusionNet', 'InstanceColorizer')
    """

    Config = InstanceColorizationConfig

    def __init__(self, cfg: InstanceColorizationConfig) -> None:
        super().__init__(cfg)  # type: ignore[arg-type]
        m = cfg.model
        if m.stage == "fusion":
            from tinct.colorization.instance import InstanceFusionNet

            self.net = InstanceFusionNet(m.width, m.crop_size, m.fusion_inner, m.fusion_style)
            if m.freeze_instance:
                self.net.instance.requires_grad_(False)
                # Lightning keeps the modes it finds (and restores them after validation).
                self.net.instance.eval()

    @property
    def fusion(self) -> bool:
        """Whether this is the fusion stage (the network takes boxes)."""
        return self.cfg.model.stage == "fusion"

    def train(self, mode: bool = True) -> InstanceColorizationTask:
        super().train(mode)
        if self.fusion and self.cfg.model.freeze_instance:
            self.net.instance.eval()  # its batch-norm statistics stay those of the instance stage
        return self

    def load_initial_weights(self) -> None:
        """Load ``model.init`` (and ``model.instance_init``) into the stage's networks.

        Raises:
            RunDirError: a named run or file does not exist or holds no weights.
            ConfigError: its network does not fit (not a SIGGRAPH17 network of this width).
        """
        m = self.cfg.model
        if self.fusion:
            targets = [(self.net.full, m.init, "full", "model.init")]
            targets.append((self.net.instance, m.instance_init, "instance", "model.instance_init"))
        else:
            part = "instance" if m.stage == "instance" else "full"
            targets = [(self.net, m.init, part, "model.init")]
        for net, source, which, what in targets:
            if source is not None:
                load_network(net, source, which, what)  # another architecture does not fit: ConfigError

    def on_fit_start(self) -> None:
        super().on_fit_start()  # model.init (and instance_init), unless the run resumes
        if self.fusion and self.cfg.model.freeze_instance:
            self.net.instance.eval()
            # Lightning then warns of modules in eval mode: here on purpose. train() runs fit inside
            # warnings.catch_warnings(), so this filter ends with the fit.
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")

    def colorizer(self, temperature: float | None = None) -> Colorizer:
        if not self.fusion:
            return super().colorizer(temperature)
        from tinct.colorization.instance import InstanceColorizer

        d, m = self.cfg.data, self.cfg.model
        t = m.temperature if temperature is None else temperature
        return InstanceColorizer(self.net, t, d.l_cent, d.l_norm, m.infer_size)

    def step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """As :meth:`ColorizationTask.step`; the fusion stage passes the batch's ``boxes`` to its network and,
        out of training, adds the inputs of the metrics inside the boxes: ``box_mask`` (b, H, W) and
        ``image_psnr_boxes`` (PSNR inside the boxes of each photo that has some)."""
        if not self.fusion:
            return super().step(batch)
        from tinct.color.lab import lab_to_rgb, rgb_to_lab

        device = batch["image"].device.type
        with torch.autocast(device, enabled=False):
            rgb = batch["image"].float()
            lab = rgb_to_lab(rgb)
        lightness, ab = lab[:, :1], lab[:, 1:]
        out = self.net(self.network_input(lightness, ab), batch["boxes"])
        result = {**self.hint_loss(out, ab), "output": out.ab}
        if not self.training:
            with torch.autocast(device, enabled=False):
                pred_ab = out.ab.float()
                result.update(self._metrics(pred_ab, lightness, ab, rgb))
                mask = box_mask(batch["boxes"], *ab.shape[-2:]).to(ab.device)
                pred_rgb = lab_to_rgb(torch.cat([lightness, pred_ab], 1), clip=True)
                pixels = mask.sum((1, 2))
                has = pixels > 0
                se = ((pred_rgb - rgb).square().sum(1) * mask).sum((1, 2))
                mse = se[has] / (3.0 * pixels[has])
                result["box_mask"] = mask.float()
                result["image_psnr_boxes"] = (10.0 * torch.log10(1.0 / mse)).clamp(max=100.0).reshape(-1)
        return result

    def build_metrics(self, stage: str) -> dict[str, Metric]:
        """The colorization metrics; the fusion stage adds ``auc_raw_boxes``, ``auc_rebalanced_boxes``
        (pooled over the pixels inside boxes) and ``psnr_boxes`` (mean over the photos with boxes)."""
        metrics = super().build_metrics(stage)
        if self.cfg.model.stage == "fusion":
            from torchmetrics.aggregation import MeanMetric

            from tinct.colorization.metrics import ABAuC

            metrics.update(
                auc_raw_boxes=ABAuC(),
                auc_rebalanced_boxes=ABAuC(),
                psnr_boxes=MeanMetric(nan_strategy="error"),
            )
        return metrics

    def update_metrics(self, stage: str, batch: Any, out: dict[str, Tensor]) -> None:
        super().update_metrics(stage, batch, out)
        mask = out.get("box_mask")
        if mask is None or not bool(mask.any()):
            return
        metrics = self.epoch_metrics[stage]
        metrics["auc_raw_boxes"].update(out["pixel_errors"], mask)
        metrics["auc_rebalanced_boxes"].update(out["pixel_errors"], out["pixel_weights"] * mask)
        metrics["psnr_boxes"].update(out["image_psnr_boxes"])

    def build_datamodule(self) -> InstanceDataModule:
        return InstanceDataModule(self.cfg)  # type: ignore[arg-type]

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        """This run's config on every photo of the folder ``path`` (its boxes: ``<path>/labels``)."""
        data = self.cfg.data.model_copy(
            update={"root": str(path), "boxes": None, "val_fraction": 0.0, "test_fraction": 0.999999}
        )
        return self.cfg.model_copy(update={"data": data})
