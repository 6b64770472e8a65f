"""Export of a pure-tensor ``nn.Module`` to ONNX or TorchScript, and inference with onnxruntime.

Domain code (:mod:`tinct.colorization.export`, :mod:`tinct.constancy.export`, :mod:`tinct.patch.export`)
wraps a model in a small module whose ``forward`` takes and returns tensors only, and hands it here with
example inputs, the names of the graph's inputs and outputs, the axes that stay free (batch, height, width)
and the metadata that make the file self-describing (the run's config as JSON ...). :func:`export_module`
writes the file and, before that, checks it: the exported graph is run (onnxruntime, or the TorchScript file
loaded back) on inputs of another size than the example's, and must agree with the eager module to
:data:`PARITY_RTOL` of the output's scale, else nothing is written.

ONNX export uses ``torch.onnx.export``'s default exporter (``torch.export`` + onnxscript); ``dynamo=False``
selects the TorchScript-based one for a graph ``torch.export`` cannot trace. Metadata become the model's
``metadata_props`` (:func:`read_onnx_metadata`); in a TorchScript file they are the extra file
``tinct.json`` (:func:`load_torchscript`). TorchScript is deprecated as of torch 2.14 (``torch.jit.trace``
warns so); it still loads without Python code of tinct, which is why it is offered.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from tinct.core.atomic import atomic_write_bytes
from tinct.core.exceptions import ConfigError, DataError

__all__ = [
    "EXPORT_FORMATS",
    "PARITY_RTOL",
    "TORCHSCRIPT_METADATA",
    "Exported",
    "Parity",
    "check_parity",
    "export_module",
    "export_onnx",
    "export_torchscript",
    "load_torchscript",
    "onnx_session",
    "read_onnx_metadata",
    "run_onnx",
]

#: The graph formats :func:`export_module` writes.
EXPORT_FORMATS = ("onnx", "torchscript")
#: Largest difference allowed between an exported graph's output and the eager module's, relative to the
#: largest absolute value of the eager output.
PARITY_RTOL = 1e-4
#: Name of the extra file of a TorchScript archive that holds its metadata (JSON).
TORCHSCRIPT_METADATA = "tinct.json"

#: An axis that stays free in the exported graph: its name, or (name, k) for a size that is a multiple of k.
Axis = str | tuple[str, int]
Source = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class Parity:
    """How closely an exported graph reproduces the eager module on one set of inputs.

    Attributes:
        max_abs_diff: largest absolute difference over every output element.
        scale: largest absolute value of the eager outputs.
        shapes: the input shapes of the check, e.g. ``"lightness 1x1x48x80"``.
    """

    max_abs_diff: float
    scale: float
    shapes: str

    @property
    def relative(self) -> float:
        """``max_abs_diff / scale`` (0 when both are 0)."""
        return (
            self.max_abs_diff / self.scale if self.scale > 0 else (0.0 if self.max_abs_diff == 0 else np.inf)
        )

    def __str__(self) -> str:
        return f"max |difference| {self.max_abs_diff:.3g} (output scale {self.scale:.3g}) on {self.shapes}"


@dataclass(frozen=True)
class Exported:
    """What :func:`export_module` made: the file's bytes, its format and metadata, and its parity check."""

    data: bytes
    format: str
    metadata: dict[str, str]
    parity: Parity
    path: Path | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings (TracerWarnings, deprecations, export hints) nor onnxscript's optimiser log lines."""
    loggers = [logging.getLogger(n) for n in ("onnxscript", "torch.onnx", "torch.export", "torch.fx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _scripting(module: nn.Module) -> Iterator[None]:
    """Tell the Lightning modules inside ``module`` that they are being scripted: outside a ``Trainer`` their
    ``trainer`` attribute raises, and ``torch.jit.trace`` reads every attribute (Lightning's own
    ``to_torchscript`` sets the same flag)."""
    flagged = [m for m in module.modules() if hasattr(type(m), "_jit_is_scripting")]
    for m in flagged:
        m._jit_is_scripting = True
    try:
        yield
    finally:
        for m in flagged:
            del m._jit_is_scripting  # back to the class's value


def _onnx() -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError as err:
        raise ConfigError(
            f"ONNX export needs the onnx and onnxscript packages ({err.name} is missing): "
            "pip install onnx onnxscript onnxruntime"
        ) from None
    return onnx


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "the onnxruntime backend needs the onnxruntime package: pip install onnxruntime"
        ) from None
    return onnxruntime


def _torch_dynamic_shapes(
    input_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, Axis]]
) -> tuple[dict[int, Any] | None, ...]:
    """``torch.export`` dimensions of ``dynamic_axes``, one entry per input in order: one ``Dim`` per name,
    shared by every input that uses it; ``(name, k)`` becomes ``k * Dim`` (a multiple of k)."""
    roots: dict[str, Any] = {}

    def dim(axis: Axis) -> Any:
        name, k = (axis, 1) if isinstance(axis, str) else axis
        key = f"{name}_over_{k}" if k > 1 else name
        if key not in roots:
            roots[key] = torch.export.Dim(key, min=1)
        return roots[key] * k if k > 1 else roots[key]

    return tuple(
        {a: dim(x) for a, x in dynamic_axes[n].items()} if n in dynamic_axes else None for n in input_names
    )


def _reason(err: BaseException) -> str:
    """The line of an exporter's error that says what went wrong (its summary names the exception)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    summary = [line for line in lines if line.startswith("<class '")]
    text = summary[0].split(">: ", 1)[-1] if summary else (lines[0] if lines else type(err).__name__)
    return text[:300]


def _legacy_axes(dynamic_axes: Mapping[str, Mapping[int, Axis]]) -> dict[str, dict[int, str]]:
    return {
        n: {a: x if isinstance(x, str) else x[0] for a, x in axes.items()} for n, axes in dynamic_axes.items()
    }


def _check_free_axes(proto: Any, dynamic_axes: Mapping[str, Mapping[int, Axis]]) -> None:
    """ConfigError if the exporter fixed an axis that was asked to stay free (``torch.export`` specialises
    a dimension silently when the model's code branches on it)."""
    for value in proto.graph.input:
        for axis in dynamic_axes.get(value.name, {}):
            d = value.type.tensor_type.shape.dim[axis]
            if not d.dim_param:
                raise ConfigError(
                    f"the ONNX exporter fixed axis {axis} of input {value.name!r} at {d.dim_value}: the model "
                    "branches on that size, so the graph would only take inputs of that size"
                )


def export_onnx(
    module: nn.Module,
    example_inputs: tuple[Tensor, ...],
    out: str | os.PathLike[str] | io.BytesIO | None = None,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, Axis]] | None = None,
    metadata: Mapping[str, str] | None = None,
    dynamo: bool = True,
) -> bytes:
    """Export ``module`` (in eval mode) to ONNX; return the model's bytes (and write them to ``out``).

    The module runs once on ``example_inputs`` first: eagerly created, module-level cached tensors (such as
    the ab bins of :func:`tinct.color.quantize.annealed_mean`) must not be first made under the exporter's
    fake tensors, which would leave a fake tensor in the cache for the rest of the process.

    Args:
        module: a module whose ``forward`` takes the inputs in the order of ``input_names`` and returns a
            tensor or a tuple of them.
        example_inputs: inputs to trace with; a free axis should have size 2 or more (``torch.export``
            fixes sizes 0 and 1).
        out: a file path or a buffer to write to; None: only return the bytes.
        input_names, output_names: names of the graph's inputs and outputs.
        dynamic_axes: per input name, the axes that stay free: ``{axis: name}`` or ``{axis: (name, k)}`` for
            a size that must be a multiple of ``k``; axes of one name share their size. Entries of output
            names serve the TorchScript-based exporter only (the default one derives the outputs' axes).
        metadata: string pairs stored as the model's ``metadata_props`` (:func:`read_onnx_metadata`).
        dynamo: ``torch.onnx.export``'s default exporter (``torch.export``); False: the TorchScript-based
            one, for modules ``torch.export`` cannot trace.

    Returns:
        The serialised ONNX model.

    Raises:
        ConfigError: onnx / onnxscript are not installed, the exporter cannot convert the module, or it
            fixed an axis of ``dynamic_axes``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
        >>> data = export_onnx(net, (torch.rand(2, 3, 8, 8),), input_names=["x"], output_names=["y"],
        ...                    dynamic_axes={"x": {0: "batch", 2: "h", 3: "w"}}, metadata={"what": "demo"})
        >>> read_onnx_metadata(data)["what"]
        'demo'
    """
    onnx = _onnx()
    module = module.eval()
    axes = dict(dynamic_axes or {})
    with torch.no_grad():
        module(*example_inputs)
    try:
        with _quiet(), torch.no_grad():
            if dynamo:
                program = torch.onnx.export(
                    module, example_inputs, input_names=list(input_names), output_names=list(output_names),
                    dynamic_shapes=_torch_dynamic_shapes(input_names, axes) if axes else None,
                    dynamo=True, verbose=False,
                )  # fmt: skip
                proto = program.model_proto
            else:
                buf = io.BytesIO()
                torch.onnx.export(
                    module, example_inputs, buf, input_names=list(input_names), output_names=list(output_names),
                    dynamic_axes=_legacy_axes(axes) or None,
                    dynamo=False, opset_version=18,
                )  # fmt: skip
                proto = onnx.load_model_from_string(buf.getvalue())
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"ONNX export of {type(module).__name__} failed: {_reason(err)}") from err
    _check_free_axes(proto, axes)
    if metadata:
        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    data: bytes = proto.SerializeToString()
    _write(out, data)
    return data


def _write(out: str | os.PathLike[str] | io.BytesIO | None, data: bytes) -> None:
    if out is None:
        return
    if isinstance(out, io.BytesIO):
        out.write(data)
    else:
        atomic_write_bytes(out, data)


def _name(source: Source | Any, name: str | None) -> str:
    if name:
        return name
    return "the in-memory model" if isinstance(source, bytes) else str(source)


def onnx_session(source: Source, threads: int | None = None, *, name: str | None = None) -> Any:
    """An onnxruntime ``InferenceSession`` on the CPU for an ``.onnx`` file or a model's bytes.

    Args:
        source: a path or the serialised model.
        threads: intra-op threads (default: ``torch.get_num_threads()``, so torch and onnxruntime get the
            same share of the machine).
        name: what to call the model in errors (default: the path).

    Raises:
        ConfigError: onnxruntime is not installed (``pip install onnxruntime``).
        DataError: the file is missing or not an ONNX model onnxruntime can load (named).
    """
    ort = _ort()
    label = _name(source, name)
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: ONNX model not found")
        source = str(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    # No busy-waiting between runs: spinning threads would take the cores from torch (and anything else)
    # after every call, which on a 2-core machine made torch 4 x slower in the same process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: onnxruntime's own warnings go to stderr otherwise
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise DataError(f"{label}: not an ONNX model onnxruntime can load ({reason})") from err


def read_onnx_metadata(source: Source | Any) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX model (a path, its bytes or an ``InferenceSession``).

    Raises:
        DataError: not an ONNX model (named); ConfigError: onnxruntime is missing.
    """
    session = source if hasattr(source, "get_modelmeta") else onnx_session(source, 1)
    return dict(session.get_modelmeta().custom_metadata_map)


def run_onnx(
    session: Any, inputs: Mapping[str, Tensor | np.ndarray], *, name: str = "the ONNX model"
) -> list[Tensor]:
    """Run ``session`` on named inputs (tensors are moved to the CPU); the outputs as CPU tensors.

    Inputs the graph does not declare are left out (an exporter may drop an input the graph never reads).

    Raises:
        DataError: an input is missing or onnxruntime refuses the inputs (shape, dtype, an index out of
            range), with its first line.
    """
    declared = [i.name for i in session.get_inputs()]
    missing = [n for n in declared if n not in inputs]
    if missing:
        raise DataError(f"{name}: inputs {missing} are missing (the graph takes {declared})")
    feeds = {}
    for n in declared:
        v = inputs[n]
        feeds[n] = np.ascontiguousarray(v.detach().cpu().numpy() if isinstance(v, Tensor) else v)
    try:
        outs = session.run(None, feeds)
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise DataError(f"{name}: onnxruntime failed ({reason})") from err
    return [torch.from_numpy(np.asarray(o)) for o in outs]


def export_torchscript(
    module: nn.Module,
    example_inputs: tuple[Tensor, ...],
    out: str | os.PathLike[str] | io.BytesIO | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """Trace ``module`` (eval mode, ``torch.jit.trace``) and save it with ``metadata`` as the extra file
    :data:`TORCHSCRIPT_METADATA` (JSON); return the archive's bytes (and write them to ``out``).

    Sizes computed from input shapes stay symbolic in the trace; Python branches on values do not (the
    branch taken by ``example_inputs`` is recorded), which :func:`export_module`'s parity check at another
    input size guards against. Trace checking is off: a module holding cached constants (the ab bins of
    ECCV16's decoding) is traced into graphs that differ only by their constants' identity.

    Example:
        >>> net = nn.Linear(3, 2).eval()
        >>> module, meta = load_torchscript(export_torchscript(net, (torch.rand(2, 3),), metadata={"a": "b"}))
        >>> meta, module(torch.rand(5, 3)).shape
        ({'a': 'b'}, torch.Size([5, 2]))
    """
    module = module.eval()
    with _quiet(), torch.no_grad(), _scripting(module):
        try:
            traced = torch.jit.trace(module, example_inputs, check_trace=False)
        except Exception as err:
            raise ConfigError(
                f"TorchScript export of {type(module).__name__} failed: {_reason(err)}"
            ) from err
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_METADATA: json.dumps(dict(metadata or {}))})
    data = buf.getvalue()
    _write(out, data)
    return data


def load_torchscript(source: Source, *, name: str | None = None) -> tuple[Any, dict[str, str]]:
    """A TorchScript archive (path or bytes) loaded on the CPU, in eval mode, and its metadata.

    Raises:
        DataError: the file is missing or not a TorchScript archive (named).
    """
    label = _name(source, name)
    files = {TORCHSCRIPT_METADATA: ""}
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DataError(f"{label}: TorchScript file not found")
    try:
        with _quiet():
            module = torch.jit.load(
                io.BytesIO(source) if isinstance(source, bytes) else str(source),
                map_location="cpu",
                _extra_files=files,
            )
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise DataError(f"{label}: not a TorchScript archive ({reason})") from err
    raw = files[TORCHSCRIPT_METADATA]
    try:
        metadata = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{label}: its {TORCHSCRIPT_METADATA} is not JSON ({err})") from err
    return module.eval(), {str(k): str(v) for k, v in metadata.items()}


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def check_parity(
    expected: Sequence[Tensor], actual: Sequence[Tensor], *, shapes: str = "", what: str = "the exported graph",
    rtol: float = PARITY_RTOL,
) -> Parity:  # fmt: skip
    """Compare an exported graph's outputs with the eager module's.

    Returns:
        The :class:`Parity` (largest absolute difference, the output's scale).

    Raises:
        ConfigError: shapes differ, or the difference exceeds ``rtol`` times the largest absolute
            expected value (or any is not finite where the expected value is).

    Example:
        >>> check_parity([torch.tensor([1.0, -20.0])], [torch.tensor([1.0, -20.001])]).max_abs_diff < 2e-3
        True
    """
    diff, scale = 0.0, 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = e.detach().cpu().double(), torch.as_tensor(a).detach().cpu().double()
        if e.shape != a.shape:
            raise ConfigError(f"{what}: output of shape {tuple(a.shape)} where torch gives {tuple(e.shape)}")
        finite = torch.isfinite(e)
        if not bool(torch.equal(finite, torch.isfinite(a))):
            raise ConfigError(f"{what}: non-finite outputs where torch's are finite (or the other way round)")
        if bool(finite.any()):
            diff = max(diff, float((e[finite] - a[finite]).abs().max()))
            scale = max(scale, float(e[finite].abs().max()))
    parity = Parity(diff, scale, shapes)
    if diff > rtol * scale:
        raise ConfigError(
            f"{what} differs from torch by {parity} ({parity.relative:.2g} of the scale; at most {rtol:g})"
        )
    return parity


def export_module(
    module: nn.Module,
    format: Literal["onnx", "torchscript"],
    example_inputs: tuple[Tensor, ...],
    check_inputs: tuple[Tensor, ...],
    out: str | os.PathLike[str] | None = None,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, Axis]] | None = None,
    metadata: Mapping[str, str] | None = None,
    dynamo: bool = True,
    reference: Any = None,
) -> Exported:
    """Export ``module`` (:func:`export_onnx` or :func:`export_torchscript`), check the graph against the
    eager module on ``check_inputs`` (another size than ``example_inputs``, so free axes are exercised),
    and only then write it to ``out`` (atomically; None: write nothing).

    ``reference`` (default: ``module``) computes the expected outputs: a module exported through an
    exportable reformulation is checked against the original computation.

    Raises:
        ConfigError: the format is unknown, the export fails, or the graph differs from the eager module by
            more than :data:`PARITY_RTOL` of the output's scale (:func:`check_parity`).
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; valid choices: {', '.join(EXPORT_FORMATS)}")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    module = module.eval()
    with torch.no_grad():
        expected = _as_tuple((module if reference is None else reference)(*check_inputs))
    shapes = ", ".join(
        f"{n} {'x'.join(map(str, t.shape))}" for n, t in zip(input_names, check_inputs, strict=True)
    )
    if format == "onnx":
        data = export_onnx(
            module, example_inputs, input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, metadata=meta, dynamo=dynamo,
        )  # fmt: skip
        session = onnx_session(data)
        actual = run_onnx(
            session, dict(zip(input_names, check_inputs, strict=True)), name="the exported graph"
        )
        what = "onnxruntime's output"
    else:
        data = export_torchscript(module, example_inputs, metadata=meta)
        loaded, _ = load_torchscript(data)
        with torch.no_grad():
            actual = list(_as_tuple(loaded(*check_inputs)))
        what = "the TorchScript module's output"
    parity = check_parity(expected, actual, shapes=shapes, what=what)
    path = None
    if out is not None:
        path = atomic_write_bytes(out, data)
    return Exported(data=data, format=format, metadata=meta, parity=parity, path=path)
