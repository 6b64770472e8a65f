"""Patch-colour models as ONNX / TorchScript graphs: image, metadata, camera, statistics -> CIELAB.

The graph is :meth:`tinct.patch.task.PatchTask.forward`, with the task's standardisation of the metadata
and the colour statistics (buffers measured on the training split) inside it:

- ``image`` :math:`(B, 3, S, S)`: the sRGB crop in [0, 1], S the model's ``data.size`` (fixed);
- ``meta`` :math:`(B, 4)` float, raw exposure metadata; ``meta_mask`` :math:`(B, 4)` bool, True where known;
- ``camera`` :math:`(B,)` int64: 1 + the index of the camera in ``model.cameras``, 0 unknown;
- ``stats`` :math:`(B, 12)` float: the patch's colour statistics (:mod:`tinct.patch.dataset`);

-> ``lab`` :math:`(B, 3)`. Every input is present whatever the model uses (an image-only model ignores the
metadata, a model without mean features the statistics), so callers feed one layout. The batch is free. A
model that embeds camera device strings (``model.device_embedding``) hashes strings in Python and cannot be
exported.

Metadata (ONNX ``metadata_props``, TorchScript ``tinct.json``): ``tinct.format`` (:data:`GRAPH_FORMAT`),
``tinct.kind`` (``patch``), ``tinct.source``, ``tinct.config`` (the run's config, JSON), ``tinct.cameras``
(JSON list: camera id i is ``cameras[i - 1]``), ``tinct.image_size``, ``tinct.inputs`` / ``tinct.outputs``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tinct.core.exceptions import ConfigError
from tinct.engine.modelfile import graph_metadata
from tinct.nn.export import Exported, export_module

__all__ = ["GRAPH_FORMAT", "PatchGraph", "export_patch_graph"]

#: ``tinct.format`` of a patch model's graph (ONNX or TorchScript).
GRAPH_FORMAT = "tinct-patch-graph-v1"
_INPUTS = ("image", "meta", "meta_mask", "camera", "stats")


class PatchGraph(nn.Module):
    """A patch task (:class:`~tinct.patch.task.PatchTask`) as a module of tensors only.

    Raises:
        ConfigError: the model embeds device strings (``model.device_embedding``).

    Example:
        >>> from tinct.engine.config import config_from_dict
        >>> from tinct.patch.task import PatchTask
        >>> cfg = {"task": "patch", "data": {"size": 32}, "model": {"width": 4, "depth": 2, "cameras": ["a"]}}
        >>> graph = PatchGraph(PatchTask(config_from_dict(cfg)))
        >>> graph(*graph.sample_inputs(2)).shape
        torch.Size([2, 3])
    """

    input_names = _INPUTS

    def __init__(self, task: Any) -> None:
        super().__init__()
        m = task.cfg.model
        if m.device_embedding:
            raise ConfigError(
                "this patch model embeds camera device strings (model.device_embedding: true), which are hashed "
                "in Python: it cannot be exported to a graph (use the tinct model file)"
            )
        self.task = task.eval()
        self.size = int(task.cfg.data.size)
        self.num_cameras = max(1, len(m.cameras))

    def forward(
        self, image: Tensor, meta: Tensor, meta_mask: Tensor, camera: Tensor, stats: Tensor
    ) -> Tensor:
        return self.task(
            {"image": image, "meta": meta, "meta_mask": meta_mask, "camera": camera, "stats": stats}
        )

    def sample_inputs(self, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Inputs of the graph, made on the CPU with a fixed seed (every camera id, some metadata unknown)."""
        g = torch.Generator().manual_seed(seed)
        s = self.size
        return (
            torch.rand(batch, 3, s, s, generator=g),
            torch.randn(batch, 4, generator=g) * 2 + 1,
            torch.rand(batch, 4, generator=g) > 0.3,
            torch.arange(batch) % (self.num_cameras + 1),
            torch.rand(batch, 12, generator=g),
        )

    def metadata(self, source: str) -> dict[str, str]:
        """The graph's metadata (see the module's description)."""
        cfg = self.task.cfg
        return {
            **graph_metadata(GRAPH_FORMAT, "patch", source, cfg.model_dump(mode="json")),
            "tinct.cameras": json.dumps(list(cfg.model.cameras)),
            "tinct.image_size": str(self.size),
            "tinct.inputs": f"image (B, 3, {self.size}, {self.size}): sRGB crop in [0, 1]; meta (B, 4) float, "
            "raw exposure metadata; meta_mask (B, 4) bool, True where known; camera (B,) int64, 1 + index in "
            "tinct.cameras, 0 unknown; stats (B, 12) float, the patch's colour statistics",
            "tinct.outputs": "lab (B, 3): CIELAB (D65, 2 degrees) of the patch",
        }


def export_patch_graph(
    task: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    format: Literal["onnx", "torchscript"] = "onnx",
    source: str = "",
) -> Exported:
    """Export a patch task (:class:`PatchGraph`) to ONNX or TorchScript, checked against the task on a batch
    of 5 (the example has 2), and write it to ``out`` (None: nothing written).

    Raises:
        ConfigError: a device-string model, the export fails, or the graph differs from the task.
    """
    graph = PatchGraph(task).eval()
    return export_module(
        graph,
        format,
        graph.sample_inputs(2),
        graph.sample_inputs(5, seed=1),
        out,
        input_names=graph.input_names,
        output_names=["lab"],
        dynamic_axes={n: {0: "batch"} for n in graph.input_names},
        metadata=graph.metadata(source),
    )
