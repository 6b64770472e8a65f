"""``task: classification``: a colorization encoder transferred to image classification.

The backbone is blocks 1-``model.blocks`` of an ECCV16 or SIGGRAPH17 colorization network (any width),
initialised from a colorization run or exported colorizer (``model.init``) or at random; the head is the
seed study's (4 convolutions and a linear layer) or a pooled linear layer
(:mod:`tinct.colorization.transfer.encoders`). ``model.freeze_until: N`` (or ``blockN``) freezes the first N
blocks, weights and BatchNorm statistics alike (0: fine-tune everything). The input is the photo's lightness
(as the colorizers were trained) or, with ``data.input: color``, its CIELAB colour (from scratch: the ceiling).

Validation and test log ``accuracy``, ``macro_f1`` and ``accuracy_<class>`` of the epoch's confusion matrix
(:class:`~tinct.colorization.transfer.metrics.ConfusionMetrics`); the checkpoint is chosen by validation
accuracy. The test report writes ``classification_metrics.json`` (confusion matrix, per-class table, the
share of confusions inside a colour group), ``classification_predictions.csv`` and
``figures/confusion_matrix.png`` (classes ordered by colour group); the learning curves are the engine's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor
from torchmetrics import Metric

from tinct.colorization.transfer.data import ClassificationDataConfig, ClassificationDataModule
from tinct.colorization.transfer.encoders import ColorizationEncoder, ImageClassifier
from tinct.core.config import ExperimentConfig, StrictModel
from tinct.engine.task import TASKS, ReportColumn, ReportTable, Task

__all__ = ["ClassificationConfig", "ClassificationModelConfig", "ClassificationTask", "freeze_blocks"]


def freeze_blocks(value: int | str) -> int:
    """``model.freeze_until`` as a number of blocks: ``3``, ``"3"`` or ``"block3"`` -> 3.

    Example:
        >>> freeze_blocks("block5"), freeze_blocks(0)
        (5, 0)
    """
    if isinstance(value, bool):
        raise ValueError(f"model.freeze_until must be blockN or a number of blocks, got {value!r}")
    text = str(value).strip().lower()
    number = text[len("block") :] if text.startswith("block") else text
    if not number.isdigit():
        raise ValueError(f"model.freeze_until must be blockN (N = 0-7) or a number of blocks, got {value!r}")
    return int(number)


class ClassificationModelConfig(StrictModel):
    """Backbone, head and what is trained.

    ``arch`` / ``width``: the colorization network the encoder comes from; ``blocks``: how many of its 7
    encoder blocks the classifier uses (the seed's design: 5). ``init``: a colorization run folder,
    checkpoint or exported ``.pt`` of that architecture and width (the shipped colorizers included), read
    when training starts (not on resume); None: random initialisation. ``freeze_until``: ``blockN`` or N,
    the first N blocks frozen (with no ``init``: a random encoder kept fixed). ``classes``: the class names, filled from the data folder by the first run
    (a trained model keeps them).
    """

    arch: Literal["eccv16", "siggraph17"] = "siggraph17"
    width: float = Field(0.25, gt=0, le=2)
    blocks: int = Field(5, ge=1, le=7)
    head: Literal["seed", "linear"] = "seed"
    init: str | None = None
    freeze_until: int = 0
    dropout: float = Field(0.0, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    classes: list[str] | None = None

    @field_validator("freeze_until", mode="before")
    @classmethod
    def _parse_freeze(cls, value: Any) -> int:
        return freeze_blocks(value)

    @model_validator(mode="after")
    def _check(self) -> ClassificationModelConfig:
        if self.freeze_until > self.blocks:
            raise ValueError(
                f"model.freeze_until {self.freeze_until} exceeds the encoder's model.blocks {self.blocks}"
            )
        if self.classes is not None and len(set(self.classes)) < max(2, len(self.classes)):
            raise ValueError(f"model.classes: at least two distinct names, got {self.classes}")
        return self


class ClassificationConfig(ExperimentConfig):
    task: Literal["classification"] = "classification"
    data: ClassificationDataConfig
    model: ClassificationModelConfig = ClassificationModelConfig()

    @model_validator(mode="after")
    def _check_input(self) -> ClassificationConfig:
        if self.data.input == "color" and self.model.init is not None:
            raise ValueError(
                "model.init: colorization encoders were trained on lightness; data.input 'color' trains "
                "from scratch (set model.init: null, or data.input: lightness)"
            )
        return self


@TASKS.register("classification")
class ClassificationTask(Task):
    """Image classification with a colorization encoder (see the module docstring)."""

    Config = ClassificationConfig
    monitor = "val/accuracy"
    monitor_mode = "max"
    report_table = ReportTable(
        "Classification table",
        (ReportColumn("Accuracy", "accuracy", 100.0), ReportColumn("Macro F1", "macro_f1", 100.0)),
        note="accuracy and macro F1 in %",
    )
    resolved_fields = ("model.classes",)

    def __init__(self, cfg: ClassificationConfig) -> None:
        if cfg.model.classes is None:
            from tinct.colorization.transfer.data import class_folders

            assert cfg.data.root is not None
            classes = list(class_folders(cfg.data.root))
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"classes": classes})})
        self.classes: list[str] = list(cfg.model.classes or [])
        super().__init__(cfg)
        m = cfg.model
        encoder = ColorizationEncoder(m.arch, m.width, m.blocks, color=cfg.data.input == "color")
        self.net = ImageClassifier(encoder, len(self.classes), m.head, m.dropout)
        self.net.encoder.freeze(m.freeze_until)
        self.last_test: dict[str, Any] = {}

    def load_initial_weights(self) -> None:
        """Load the encoder blocks of ``model.init`` (see :class:`ClassificationModelConfig`)."""
        if self.cfg.model.init is not None:
            self.net.encoder.load_colorizer(self.cfg.model.init)

    def setup(self, stage: str) -> None:
        if self.cfg.model.freeze_until:
            import warnings

            # Frozen blocks stay in eval mode on purpose (their BatchNorm statistics are kept).
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")

    def on_fit_start(self) -> None:
        # After Lightning restored a resumed run's own checkpoint (which then wins), before the first step.
        if self.trainer.ckpt_path is None:
            self.load_initial_weights()

    def forward(self, rgb: Tensor) -> Tensor:
        """Class logits of sRGB photos ``(B, 3, H, W)`` in [0, 1], H and W multiples of 8."""
        return self.net(self.net.encoder.prepare(rgb))

    def build_metrics(self, stage: str) -> dict[str, Metric]:
        from tinct.colorization.transfer.metrics import ConfusionMetrics

        return {"confusion": ConfusionMetrics(self.classes)}

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits.float(), batch["label"], label_smoothing=self.cfg.model.label_smoothing)
        out = {"loss": loss, "output": logits}
        if self.training:
            out["accuracy"] = (logits.argmax(1) == batch["label"]).float().mean()
        return out

    def update_metrics(self, stage: str, batch: Any, out: dict[str, Tensor]) -> None:
        self.epoch_metrics[stage]["confusion"].update(out["output"].argmax(1), batch["label"])
        if stage == "test":
            probs = out["output"].float().softmax(1).detach().cpu()
            self.last_test.setdefault("rows", []).append((batch["index"].cpu(), batch["label"].cpu(), probs))

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.last_test = {}

    def on_test_epoch_end(self) -> None:
        metric = self.epoch_metrics["test"]["confusion"]
        super().on_test_epoch_end()
        if metric.matrix is not None:
            self.last_test["matrix"] = metric.matrix.tolist()

    def build_datamodule(self) -> L.LightningDataModule:
        return ClassificationDataModule(self.cfg, self.classes)

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        data = self.cfg.data.model_copy(
            update={"root": str(path), "val_fraction": 0.0, "test_fraction": 0.999999, "split_file": None}
        )
        return self.cfg.model_copy(update={"data": data})

    def write_test_report(self, out_dir: Path, data: str) -> dict[str, Any]:
        from tinct.colorization.transfer.report import write_classification_report

        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        photos = [p for p, _ in dm.splits["test"]] if dm is not None and dm.splits else []
        return write_classification_report(self, out_dir, data, photos)

    def predict_files(
        self, paths: Sequence[Path], out_dir: Path, names: Sequence[Path] | None = None
    ) -> list[dict[str, Any]]:
        from tinct.colorization.transfer.report import classify_files

        return classify_files(self, paths)
