"""Illuminant estimators as ONNX / TorchScript graphs: ``image`` (B, 3, H, W) -> ``illuminant`` (B, 3).

The graph is :meth:`tinct.constancy.task.IlluminantTask.forward` without a mask: linear camera RGB in (any
H and W, any batch), the unit-norm illuminant out. Pixels to ignore (a colour checker, clipped pixels) are
given as 0: for the CNNs that is exactly what a mask does (their input is zeroed there); FFCC leaves out
pixels darker than ``min_intensity`` of the image's maximum, so zeros are left out too, but its threshold
is then relative to the maximum of the pixels kept.

FFCC (:class:`~tinct.constancy.ffcc.FFCC`) filters its histograms by FFTs, which the ONNX exporter cannot
take: with torch 2.14.1 and onnxscript 0.7 the default exporter stops at complex tensors (no ONNX function
for ``aten.unsqueeze`` on a complex input), and the uncertainty's ``torch.linalg.eigh`` has no ONNX
operator. :class:`FFCCGraph` computes the same circular convolution with real DFT matrices (four 64 x 64
matrix products per side, in float32; the logits agree with the FFT's to about 2e-7 of their scale) and
returns the estimate without its uncertainty. TorchScript takes the same graph.

Metadata (ONNX ``metadata_props``, TorchScript ``tinct.json``): ``tinct.format`` (:data:`GRAPH_FORMAT`),
``tinct.kind`` (``illuminant``), ``tinct.source``, ``tinct.config`` (the run's config, JSON),
``tinct.estimator`` (``cnn`` or ``ffcc``), ``tinct.inputs`` / ``tinct.outputs`` (a description).
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tinct.constancy.ffcc import FFCC, uv_to_rgb
from tinct.constancy.ffcc_ensemble import FFCCEnsemble
from tinct.engine.modelfile import graph_metadata
from tinct.nn.export import Exported, export_module

__all__ = [
    "GRAPH_FORMAT",
    "FFCCEnsembleGraph",
    "FFCCGraph",
    "IlluminantGraph",
    "export_illuminant_graph",
    "ffcc_graph",
]

#: ``tinct.format`` of an illuminant estimator's graph (ONNX or TorchScript).
GRAPH_FORMAT = "tinct-illuminant-graph-v1"


def _dft_matrices(n: int) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of ``2 pi k m / n`` (n x n, float64): the DFT matrix is ``cos - i sin``."""
    k = torch.arange(n, dtype=torch.float64)
    angle = (2.0 * math.pi / n) * torch.outer(k, k).remainder(n)
    return torch.cos(angle), torch.sin(angle)


class FFCCGraph(FFCC):
    """An :class:`~tinct.constancy.ffcc.FFCC` whose logits are computed without complex numbers (exportable).

    The circular convolution ``sum_c N_c * F_c`` is evaluated as ``Re(F^H ((F N F) . G) F^H) / n^2`` with the
    real and imaginary parts of the DFT matrix ``F`` and of the filters' spectrum ``G``, all precomputed
    (the filters are fixed once trained). :meth:`forward` is :meth:`FFCC.forward <tinct.constancy.ffcc.FFCC.forward>`
    without the uncertainty.

    Args:
        ffcc: a trained FFCC; its settings and state are copied.

    Example:
        >>> f = FFCC(bins=16, channels=2)
        >>> _ = torch.nn.init.normal_(f.filter_v, std=1e-3)
        >>> x = torch.rand(3, 3, 24, 32) + 0.05
        >>> bool((FFCCGraph(f)(x) - f(x)).abs().max() < 1e-5)
        True
    """

    def __init__(self, ffcc: FFCC) -> None:
        filter_tv, filter_l2, bias_tv, bias_l2 = (float(v) for v in ffcc.regularisers)
        super().__init__(
            bins=ffcc.bins, bin_size=ffcc.bin_size, channels=ffcc.channels, filter_tv=filter_tv,
            filter_l2=filter_l2, bias_tv=bias_tv, bias_l2=bias_l2, min_intensity=ffcc.min_intensity,
        )  # fmt: skip
        self.load_state_dict(ffcc.state_dict())
        self.requires_grad_(False)
        cos, sin = _dft_matrices(self.bins)
        with torch.no_grad():
            spectrum = torch.fft.fft2(self.filters.double())
            self.register_buffer("dft_cos", cos.float(), persistent=False)
            self.register_buffer("dft_sin", sin.float(), persistent=False)
            self.register_buffer("filter_re", spectrum.real.float(), persistent=False)
            self.register_buffer("filter_im", spectrum.imag.float(), persistent=False)
            self.register_buffer("bias_map", self.bias.detach().clone(), persistent=False)

    def logits(self, hist: Tensor, spectrum: Tensor | None = None) -> Tensor:
        """``B + sum_c N_c * F_c`` by real DFT matrix products; ``spectrum`` is ignored."""
        c, s = self.dft_cos, self.dft_sin
        re = c @ hist @ c - s @ hist @ s  # F N F with F = c - i s (c, s symmetric)
        im = -(c @ hist @ s + s @ hist @ c)
        y_re = (re * self.filter_re - im * self.filter_im).sum(dim=1)
        y_im = (re * self.filter_im + im * self.filter_re).sum(dim=1)
        conv = (c @ y_re @ c - s @ y_re @ s - c @ y_im @ s - s @ y_im @ c) / (self.bins * self.bins)
        return conv + self.bias_map

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        hist = self.histograms(image, mask)
        uv, _, _ = self.estimate_uv(hist, self.gray_world_uv(image, mask))
        return uv_to_rgb(uv)


class FFCCEnsembleGraph(FFCCEnsemble):
    """An :class:`~tinct.constancy.ffcc_ensemble.FFCCEnsemble` of :class:`FFCCGraph` members (exportable).

    Example:
        >>> ens = FFCCEnsemble(shifts=2, bins=16, channels=2)
        >>> for m in ens.members:
        ...     _ = torch.nn.init.normal_(m.filter_v, std=1e-3)
        >>> x = torch.rand(3, 3, 24, 32) + 0.05
        >>> bool((FFCCEnsembleGraph(ens)(x) - ens(x)).abs().max() < 1e-5)
        True
    """

    def __init__(self, ensemble: FFCCEnsemble) -> None:
        nn.Module.__init__(self)
        self.shifts = ensemble.shifts
        self.members = nn.ModuleList(FFCCGraph(m) for m in ensemble.members)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        uv, _, _ = self.estimate_uv(self.histograms(image, mask), self.gray_world_uv(image, mask))
        return uv_to_rgb(uv)


def ffcc_graph(ffcc: FFCC | FFCCEnsemble) -> nn.Module:
    """The exportable graph of an FFCC model or ensemble: :class:`FFCCGraph` or :class:`FFCCEnsembleGraph`."""
    return FFCCEnsembleGraph(ffcc) if isinstance(ffcc, FFCCEnsemble) else FFCCGraph(ffcc)


class IlluminantGraph(nn.Module):
    """An illuminant task (:class:`~tinct.constancy.task.IlluminantTask`) as a module of tensors only.

    ``forward(image (B, 3, H, W)) -> illuminant (B, 3)``: the task's forward without a mask (FFCC through
    :class:`FFCCGraph`).

    Example:
        >>> from tinct.engine.config import config_from_dict
        >>> from tinct.constancy.task import IlluminantTask
        >>> task = IlluminantTask(config_from_dict({"task": "illuminant", "model": {"width": 4, "depth": 2}}))
        >>> x = torch.rand(2, 3, 32, 32)
        >>> bool(torch.equal(IlluminantGraph(task)(x), task.eval()(x)))
        True
    """

    input_names = ("image",)

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task = task.eval()
        self.estimator: nn.Module = ffcc_graph(task.ffcc) if task.is_ffcc else task

    def forward(self, image: Tensor) -> Tensor:
        return self.estimator(image)

    @staticmethod
    def sample_inputs(batch: int, h: int, w: int, seed: int = 0) -> tuple[Tensor]:
        """A batch of positive linear images with a colour cast, made on the CPU with a fixed seed."""
        g = torch.Generator().manual_seed(seed)
        cast = 0.5 + torch.rand(batch, 3, 1, 1, generator=g)
        return ((torch.rand(batch, 3, h, w, generator=g) * 0.9 + 0.02) * cast,)

    def metadata(self, source: str) -> dict[str, str]:
        """The graph's metadata (see the module's description)."""
        cfg = self.task.cfg
        return {
            **graph_metadata(GRAPH_FORMAT, "illuminant", source, cfg.model_dump(mode="json")),
            "tinct.estimator": cfg.model.estimator,
            "tinct.inputs": "image (B, 3, H, W): linear camera RGB (black level subtracted), any scale; pixels "
            "to ignore set to 0",
            "tinct.outputs": "illuminant (B, 3): unit-norm camera RGB of the illuminant"
            + (" (FFCC: without its uncertainty)" if self.task.is_ffcc else ""),
        }


def export_illuminant_graph(
    task: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    format: Literal["onnx", "torchscript"] = "onnx",
    source: str = "",
) -> Exported:
    """Export an illuminant task (:class:`IlluminantGraph`) to ONNX or TorchScript, checked against the
    task's own forward on a 3 x 3 x 48 x 80 batch, and write it to ``out`` (None: nothing written).

    Args:
        task: an :class:`~tinct.constancy.task.IlluminantTask` (e.g. :func:`tinct.engine.modelfile.load_model`).
        source: where it came from, for the metadata.

    Raises:
        ConfigError: the export fails or the graph differs from the task (nothing written).
    """
    graph = IlluminantGraph(task).eval()
    return export_module(
        graph,
        format,
        graph.sample_inputs(2, 64, 64),
        graph.sample_inputs(3, 48, 80, seed=1),
        out,
        input_names=graph.input_names,
        output_names=["illuminant"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
        metadata=graph.metadata(source),
        reference=graph.task,  # FFCC: the FFT-based estimator itself, not the graph's DFT matrices
    )
