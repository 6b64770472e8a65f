"""Colorizers as ONNX / TorchScript graphs, and a colorizer whose network runs in onnxruntime.

The graph is a colorizer's network step, :meth:`~tinct.colorization.networks.Colorizer.network_ab`: the
photo-sized work around it (reading, resizing L to the network's size, padding, the last upsampling, strips)
stays in Python, so :class:`OnnxColorizer` is a :class:`~tinct.colorization.networks.Colorizer` whose
:meth:`~OnnxColorizer.network_ab` calls onnxruntime, and ``tinct colorize`` / ``tinct evaluate
colorization`` run it unchanged.

Graph inputs (H and W free, multiples of 8; the batch free):

- ``lightness`` :math:`(B, 1, H, W)`: the normalised lightness ``(L - l_cent) / l_norm``;
- SIGGRAPH17 networks also ``hint_ab`` :math:`(B, 2, H, W)` (CIELAB a*, b* of the hints, read where the
  mask is 1) and ``hint_mask`` :math:`(B, 1, H, W)` (1 at a hint, else 0; all zero: automatic).

Output ``ab`` :math:`(B, 2, H, W)`: ECCV16's annealed mean at the export temperature (recorded; another
temperature at inference is refused, since decoding is part of the graph) upsampled x 4, SIGGRAPH17's
regression head. An instance-aware (fusion) model is exported as its full-image network, which is what it
does for a photo without boxes; the graph's metadata say so (``tinct.note``).

Metadata (ONNX ``metadata_props``, TorchScript ``tinct.json``): ``tinct.format`` (:data:`GRAPH_FORMAT`),
``tinct.kind`` (``colorizer``), ``tinct.source``, ``tinct.config`` (the run's config, JSON), ``tinct.l_cent``,
``tinct.l_norm``, ``tinct.infer_size``, ``tinct.hint_channels``, ``tinct.temperature`` (empty when the
network's output does not depend on it), ``tinct.inputs`` / ``tinct.outputs`` (a description) and, for an
instance-aware model, ``tinct.note``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tinct.colorization.networks import Colorizer, check_temperature
from tinct.core.exceptions import ConfigError, DataError
from tinct.engine.modelfile import graph_metadata
from tinct.nn.export import (
    Exported,
    export_module,
    onnx_session,
    read_onnx_metadata,
    run_onnx,
)

__all__ = [
    "GRAPH_FORMAT",
    "ColorizerGraph",
    "OnnxColorizer",
    "OnnxNetwork",
    "export_colorizer_graph",
    "load_onnx_colorizer",
    "onnx_colorizer",
]

#: ``tinct.format`` of a colorizer's graph (ONNX or TorchScript).
GRAPH_FORMAT = "tinct-colorizer-graph-v1"
INSTANCE_NOTE = (
    "instance-aware model: the graph is its full-image network (what it does for a photo without boxes); "
    "object boxes are not used"
)
_HINT_INPUTS = ("lightness", "hint_ab", "hint_mask")


def _uses_temperature(net: nn.Module) -> bool:
    """Whether the network's ab depend on the decoding temperature: ECCV16's classification head."""
    return not getattr(net, "hint_channels", 0) and getattr(net, "out_channels", 2) != 2


class ColorizerGraph(nn.Module):
    """A colorizer's network step as a module of tensors only (what is exported).

    Args:
        colorizer: a :class:`~tinct.colorization.networks.Colorizer`; an instance-aware one is exported as
            it colours a photo without boxes, with its full-image network (:attr:`note` says so).
        temperature: ECCV16's decoding temperature baked into the graph (default: the colorizer's).

    Shape:
        - lightness: :math:`(B, 1, H, W)` normalised, H and W multiples of 8; hint_ab :math:`(B, 2, H, W)`
          and hint_mask :math:`(B, 1, H, W)` for SIGGRAPH17 networks (:attr:`input_names`).
        - Output: ab :math:`(B, 2, H, W)`.

    Example:
        >>> from tinct.colorization.networks import ColorizationNet
        >>> c = Colorizer(ColorizationNet(width=0.125)).eval()
        >>> graph = ColorizerGraph(c, temperature=0.2)
        >>> x = torch.randn(1, 1, 32, 40)
        >>> graph.input_names, torch.equal(graph(x), c.network_ab(x, 0.2))
        (('lightness',), True)
    """

    def __init__(self, colorizer: Colorizer, temperature: float | None = None) -> None:
        super().__init__()
        # An instance-aware colorizer without boxes runs the network it uses for photos without boxes.
        self.note = INSTANCE_NOTE if getattr(colorizer, "uses_boxes", False) else None
        self.colorizer = colorizer
        self.temperature = colorizer.temperature if temperature is None else check_temperature(temperature)
        self.takes_hints = bool(getattr(colorizer.net, "hint_channels", 0))
        #: Names of the graph's inputs, in the order of :meth:`forward`.
        self.input_names: tuple[str, ...] = _HINT_INPUTS if self.takes_hints else _HINT_INPUTS[:1]

    def forward(
        self, lightness: Tensor, hint_ab: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        hints = (
            (hint_ab, hint_mask)
            if self.takes_hints and hint_ab is not None and hint_mask is not None
            else None
        )
        return self.colorizer.network_ab(lightness, self.temperature, hints)

    def sample_inputs(self, batch: int, h: int, w: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Inputs of the graph (lightness around 0, a few hints) made on the CPU with a fixed seed."""
        g = torch.Generator().manual_seed(seed)
        x = (torch.rand(batch, 1, h, w, generator=g) - 0.5) * 0.8
        if not self.takes_hints:
            return (x,)
        mask = (torch.rand(batch, 1, h, w, generator=g) > 0.97).float()
        ab = (torch.rand(batch, 2, h, w, generator=g) - 0.5) * 120 * mask
        return x, ab, mask

    def metadata(self, info: dict[str, Any]) -> dict[str, str]:
        """The graph's metadata (see the module's description) for a colorizer of ``info`` (``source``,
        ``config``), as :func:`tinct.colorization.colorize.load_colorizer` returns it."""
        c = self.colorizer
        hints = (
            "; hint_ab (B, 2, H, W): CIELAB a*, b* of the colour hints (read where hint_mask is 1); "
            "hint_mask (B, 1, H, W): 1 at a hint, else 0 (all 0: automatic colorization)"
            if self.takes_hints
            else ""
        )
        meta = {
            **graph_metadata(GRAPH_FORMAT, "colorizer", str(info.get("source", "")), info.get("config")),
            "tinct.network": type(c.net).__name__,
            "tinct.l_cent": repr(float(c.l_cent)),
            "tinct.l_norm": repr(float(c.l_norm)),
            "tinct.infer_size": str(int(c.infer_size)),
            "tinct.hint_channels": str(int(getattr(c.net, "hint_channels", 0))),
            "tinct.temperature": repr(self.temperature) if _uses_temperature(c.net) else "",
            "tinct.inputs": "lightness (B, 1, H, W): (L* - l_cent) / l_norm, H and W multiples of 8 (the "
            "photo's L at the network's size, short side infer_size, padded by reflection)" + hints,
            "tinct.outputs": "ab (B, 2, H, W): CIELAB a*, b* at the input's resolution",
        }
        if self.note:
            meta["tinct.note"] = self.note
        return meta


def export_colorizer_graph(
    colorizer: Colorizer,
    info: dict[str, Any],
    out: str | os.PathLike[str] | None = None,
    *,
    format: Literal["onnx", "torchscript"] = "onnx",
    temperature: float | None = None,
) -> Exported:
    """Export a colorizer's network step (:class:`ColorizerGraph`) to ONNX or TorchScript, checked against
    torch on a 1 x 48 x 80 input (:func:`tinct.nn.export.export_module`), and write it to ``out`` (None:
    nothing written; ``Exported.data`` holds the bytes). ``Exported.notes`` holds the instance-aware note.

    Args:
        colorizer, info: as :func:`tinct.colorization.colorize.load_colorizer` returns them (on the CPU).
        temperature: ECCV16's decoding temperature for the graph (default: the colorizer's).

    Raises:
        ConfigError: the export fails or the graph differs from torch (nothing written).
    """
    from dataclasses import replace

    graph = ColorizerGraph(colorizer, temperature).eval()
    exported = export_module(
        graph,
        format,
        graph.sample_inputs(2, 64, 96),
        graph.sample_inputs(1, 48, 80, seed=1),
        out,
        input_names=graph.input_names,
        output_names=["ab"],
        dynamic_axes={n: {0: "batch", 2: ("height", 8), 3: ("width", 8)} for n in graph.input_names},
        metadata=graph.metadata(info),
    )
    return replace(exported, notes=[graph.note] if graph.note else [])


class OnnxNetwork(nn.Module):
    """A colorizer graph in an onnxruntime session, as the ``net`` of an :class:`OnnxColorizer`.

    ``forward(lightness, hint_ab=None, hint_mask=None) -> ab`` (see the module's description; hints of a
    SIGGRAPH17 graph default to none). It holds one empty parameter on the CPU, where onnxruntime runs:
    :class:`~tinct.colorization.networks.Colorizer` finds its device from its network's parameters.
    """

    def __init__(self, session: Any, hint_channels: int, name: str) -> None:
        super().__init__()
        self.session = session
        self.hint_channels = hint_channels
        self.name = name
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(
        self, lightness: Tensor, hint_ab: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        feeds = {"lightness": lightness.float()}
        if self.hint_channels:
            b, _, h, w = lightness.shape
            feeds["hint_ab"] = lightness.new_zeros(b, 2, h, w) if hint_ab is None else hint_ab.float()
            feeds["hint_mask"] = lightness.new_zeros(b, 1, h, w) if hint_mask is None else hint_mask.float()
        return run_onnx(self.session, feeds, name=self.name)[0]

    def extra_repr(self) -> str:
        return f"{self.name}, hint_channels={self.hint_channels}"


def _number(meta: dict[str, str], key: str, name: str) -> float:
    try:
        return float(meta[key])
    except (KeyError, ValueError):
        raise DataError(f"{name}: its metadata lack a valid {key!r} (not a tinct colorizer graph?)") from None


class OnnxColorizer(Colorizer):
    """A :class:`~tinct.colorization.networks.Colorizer` whose network step runs in onnxruntime (CPU).

    Everything around the network (resizing, padding, upsampling, strips) is the colorizer's own code, so
    ``colorize_file`` and ``evaluate_colorization`` take it as any colorizer. Object boxes are not used.

    Args:
        session: an onnxruntime session of a graph of :func:`export_colorizer_graph`.
        metadata: the graph's metadata (:func:`tinct.nn.export.read_onnx_metadata`).
        name: what to call the model in messages.

    Raises:
        DataError: the metadata are not a tinct colorizer graph's.
    """

    uses_boxes = False

    def __init__(self, session: Any, metadata: dict[str, str], name: str) -> None:
        if metadata.get("tinct.format") != GRAPH_FORMAT:
            raise DataError(
                f"{name}: not a tinct colorizer graph (metadata tinct.format is "
                f"{metadata.get('tinct.format')!r}, expected {GRAPH_FORMAT!r}; made by tinct export?)"
            )
        hint_channels = int(_number(metadata, "tinct.hint_channels", name))
        t = _number(metadata, "tinct.temperature", name) if metadata.get("tinct.temperature") else None
        super().__init__(
            OnnxNetwork(session, hint_channels, name),
            0.38 if t is None else t,
            _number(metadata, "tinct.l_cent", name),
            _number(metadata, "tinct.l_norm", name),
            int(_number(metadata, "tinct.infer_size", name)),
        )
        #: The temperature decoded in the graph; None where the output does not depend on one.
        self.graph_temperature = t
        self.metadata = metadata
        self.name = name

    def check_temperature(self, temperature: float | None) -> None:
        """ConfigError unless ``temperature`` is None or the graph's (where the output depends on it)."""
        if temperature is None or self.graph_temperature is None:
            return
        if check_temperature(temperature) != self.graph_temperature:
            raise ConfigError(
                f"{self.name} decodes at temperature {self.graph_temperature:g} inside its graph, not "
                f"{temperature:g}: export it again with --temperature {temperature:g}, or use --backend torch"
            )

    def network_ab(
        self,
        x: Tensor,
        temperature: float | None = None,
        hints: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
    ) -> Tensor:
        """As :meth:`Colorizer.network_ab <tinct.colorization.networks.Colorizer.network_ab>`, by onnxruntime.

        Raises:
            ConfigError: boxes; hints for a graph without hint inputs; a temperature other than the graph's.
        """
        if boxes is not None:
            raise ConfigError(f"{self.name} takes no object boxes (an ONNX graph colours the whole photo)")
        if hints is not None and not self.net.hint_channels:
            raise ConfigError(f"{self.name} takes no colour hints (a SIGGRAPH17 model does)")
        self.check_temperature(temperature)
        ab, mask = hints if hints is not None else (None, None)
        return self.net(x, ab, mask)


def load_onnx_colorizer(
    source: str | os.PathLike[str] | bytes, temperature: float | None = None, *, name: str | None = None
) -> tuple[OnnxColorizer, dict[str, Any]]:
    """An :class:`OnnxColorizer` of an ``.onnx`` file (or its bytes) written by ``tinct export``.

    Returns:
        ``(colorizer, info)``, info as :func:`tinct.colorization.colorize.load_colorizer`'s (``source``,
        ``config``) plus ``backend`` and the graph's ``note``, if any.

    Raises:
        DataError: missing, not an ONNX model, or not a tinct colorizer graph (named).
        ConfigError: ``temperature`` differs from the one decoded in the graph; onnxruntime is missing.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "the in-memory ONNX model")
    session = onnx_session(source, name=label)
    meta = read_onnx_metadata(session)
    colorizer = OnnxColorizer(session, meta, label)
    colorizer.check_temperature(temperature)
    try:
        config = json.loads(meta.get("tinct.config", "null"))
    except json.JSONDecodeError:
        config = None
    info = {"source": label, "config": config, "backend": "onnxruntime"}
    if meta.get("tinct.note"):
        info["note"] = meta["tinct.note"]
    return colorizer.eval(), info


def onnx_colorizer(
    colorizer: Colorizer, info: dict[str, Any], temperature: float | None = None
) -> tuple[OnnxColorizer, dict[str, Any]]:
    """``colorizer`` exported to ONNX in memory (nothing is written) and loaded into onnxruntime.

    The export takes a few seconds (``torch.export``); the graph is checked against ``colorizer`` first.
    """
    exported = export_colorizer_graph(colorizer, info, None, format="onnx", temperature=temperature)
    return load_onnx_colorizer(exported.data, temperature, name=f"{info.get('source')} (ONNX, in memory)")
