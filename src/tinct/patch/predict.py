"""A trained patch-colour model applied to photos: find the patch, read the camera metadata, predict CIELAB.

The training pipeline's own steps, in the same order: the patch is found by
:func:`tinct.patch.crop.locate_patch` (the run's ``data.crop: auto``), the crop (grown by the run's
``data.context``) is resized and described by :class:`tinct.patch.dataset.PatchDataset`, the metadata come
from ``<stem>.json`` beside the photo or its EXIF (:func:`tinct.patch.labels.photos_table`), and the task's
own standardisation and network give L*a*b* (D65 / 2 degrees).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.core.exceptions import ConfigError

__all__ = ["PatchPrediction", "predict_patches"]


@dataclass(frozen=True)
class PatchPrediction:
    """One photo's prediction.

    Attributes:
        image: the photo's path.
        lab: ``(3,)`` predicted L*, a*, b*.
        box: the patch found, ``(x0, y0, x1, y1)`` in pixels of the upright photo (``x1``, ``y1``
            exclusive); None for a model trained on whole images (``data.crop: none``).
        crop: ``(size, size, 3)`` float32 sRGB in [0, 1]: what the network saw.
        metadata: the camera metadata used (None where unknown) and the camera name.
    """

    image: str
    lab: np.ndarray
    box: tuple[int, int, int, int] | None
    crop: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def swatch(self) -> np.ndarray:
        """A 96 x 96 uint8 sRGB image of the predicted colour (clipped to the sRGB gamut)."""
        from tinct.color.lab import lab_to_rgb

        rgb = lab_to_rgb(torch.as_tensor(self.lab, dtype=torch.float32).view(1, 3, 1, 1), clip=True)[
            0, :, 0, 0
        ]
        return np.broadcast_to((rgb.numpy() * 255.0 + 0.5).astype(np.uint8), (96, 96, 3)).copy()


def _boxes(table: Any, crop: str) -> dict[str, tuple[int, int, int, int]] | None:
    """The patch box of each photo of ``table`` (None for a model trained on whole photos)."""
    from tinct.patch.crop import locate_patches

    if crop == "none":
        return None
    found = locate_patches([Path(n) for n in table.table["image"].astype(str)], progress=False)
    return {str(path): box.as_tuple() for path, box in found.items()}


@torch.no_grad()
def predict_patches(
    task: Any, photos: Sequence[str | os.PathLike[str]], *, device: Any = "cpu", batch_size: int = 64
) -> list[PatchPrediction]:
    """Predict the CIELAB colour of the patch in each photo with a trained patch task.

    Args:
        task: a :class:`~tinct.patch.task.PatchTask` (e.g. :func:`tinct.engine.modelfile.load_model`).
        photos: photo files (with EXIF or a ``<stem>.json`` of metadata; without, the model treats the
            metadata as unknown, as it was trained to).
        device: where the network runs.
        batch_size: photos per forward pass.

    Returns:
        One :class:`PatchPrediction` per photo, in order.

    Raises:
        DataError: a photo is missing or unreadable, or no patch is found in it (named).
        ConfigError: ``task`` is not a patch task.
    """
    from tinct.patch.dataset import PatchDataset
    from tinct.patch.labels import photos_table

    if getattr(getattr(task, "cfg", None), "task", None) != "patch":
        raise ConfigError(f"expected a patch-colour model, got {type(task).__name__}")
    if not photos:
        return []
    d = task.cfg.data
    table = photos_table(photos)
    boxes = _boxes(table, d.crop)
    cameras = {name: i + 1 for i, name in enumerate(task.cfg.model.cameras)}
    data = PatchDataset(
        table,
        range(len(table)),
        boxes=boxes,
        size=d.size,
        context=d.context,
        camera_index=cameras,
        cache=False,
    )
    task = task.eval().to(device)
    out: list[PatchPrediction] = []
    rows = table.table
    for start in range(0, len(data), batch_size):
        samples = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        batch = {k: torch.stack([s[k] for s in samples]).to(device) for k in samples[0]}
        lab = task(batch).float().cpu().numpy()
        for j, s in enumerate(samples):
            i = start + j
            name = str(rows["image"].iloc[i])
            meta = {c: (None if np.isnan(v) else float(v)) for c in ("exposure_time", "iso", "f_number",
                    "brightness", "ev100") for v in [float(rows[c].iloc[i])]}  # fmt: skip
            meta["camera"] = str(rows["camera"].iloc[i])
            out.append(
                PatchPrediction(
                    image=name,
                    lab=lab[j],
                    box=None if boxes is None else tuple(int(v) for v in boxes[name]),  # type: ignore[arg-type]
                    crop=s["image"].permute(1, 2, 0).numpy().astype(np.float32),
                    metadata=meta,
                )
            )
    return out
