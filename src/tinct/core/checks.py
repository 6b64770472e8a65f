"""The one validation path of tinct (shapes, dtypes, names).

Modelled on kornia's ``KORNIA_CHECK_SHAPE``: a shape is described by a list of tokens, ``"*"`` for any
number of leading dimensions, a number for a fixed size and a letter for a free size.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tinct.core.exceptions import ConfigError, ShapeError, TypeCheckError, UnknownNameError

__all__ = [
    "check_device",
    "NAME_MAX_BYTES",
    "check_channel_dim",
    "check_choice",
    "check_floating",
    "check_fold_count",
    "check_inside",
    "check_name",
    "check_positive",
    "check_same_shape",
    "check_shape",
    "check_tensor",
]


def check_tensor(x: Any, name: str = "input") -> Tensor:
    """Raise :class:`TypeCheckError` unless ``x`` is a ``torch.Tensor``; return it."""
    if not isinstance(x, Tensor):
        raise TypeCheckError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def check_floating(x: Any, name: str = "input") -> Tensor:
    """Raise :class:`TypeCheckError` unless ``x`` is a floating-point tensor; return it.

    Integer images are refused rather than silently cast: an 8-bit image in [0, 255] fed to a function
    that expects [0, 1] is the most common colour bug there is. Convert with ``x.float() / 255`` first.
    """
    check_tensor(x, name)
    if not torch.is_floating_point(x):
        raise TypeCheckError(
            f"{name}: expected a floating-point tensor, got dtype {x.dtype}; "
            "convert first, e.g. x.float() / 255 for 8-bit images"
        )
    return x


def check_shape(x: Tensor, shape: Sequence[str], name: str = "input") -> Tensor:
    """Check ``x`` against a shape pattern such as ``["*", "3", "H", "W"]``.

    Args:
        x: tensor to check.
        shape: tokens; ``"*"`` (first token only) matches any number (>= 0) of leading dimensions, a
            decimal string must equal the size, any other string matches any size.
        name: what to call ``x`` in the message.

    Returns:
        ``x`` unchanged.

    Raises:
        ShapeError: with the expected pattern and the shape that arrived.
    """
    check_tensor(x, name)
    tokens = list(shape)
    star = bool(tokens) and tokens[0] == "*"
    fixed = tokens[1:] if star else tokens
    pattern = "(" + ", ".join(tokens) + ")"
    if (star and x.ndim < len(fixed)) or (not star and x.ndim != len(fixed)):
        raise ShapeError(f"{name}: expected shape {pattern}, got {tuple(x.shape)}")
    actual = x.shape[x.ndim - len(fixed) :]
    for token, size in zip(fixed, actual, strict=True):
        if token.isdigit() and int(token) != size:
            raise ShapeError(f"{name}: expected shape {pattern}, got {tuple(x.shape)}")
    return x


def check_channel_dim(x: Any, dim: int, size: int = 3, name: str = "input") -> int:
    """Check that floating tensor ``x`` has ``size`` entries along ``dim``; return ``dim`` as a positive index.

    This is the check behind every colour op: images are ``(*, 3, H, W)`` with ``dim=-3`` and colour
    lists ``(*, 3)`` with ``dim=-1``.
    """
    check_floating(x, name)
    if not -x.ndim <= dim < max(x.ndim, 1):
        layout = "(*, 3, H, W) with dim=-3" if dim == -3 else f"a channel axis at dim={dim}"
        raise ShapeError(f"{name}: expected {layout}, got a tensor of shape {tuple(x.shape)}")
    pos = dim % x.ndim
    if x.shape[pos] != size:
        raise ShapeError(
            f"{name}: expected {size} channels along dim={dim}, got shape {tuple(x.shape)} "
            f"(images are (*, {size}, H, W) with dim=-3; colour lists (*, {size}) need dim=-1)"
        )
    return pos


def check_same_shape(a: Tensor, b: Tensor, names: tuple[str, str] = ("input", "target")) -> None:
    """Raise :class:`ShapeError` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ShapeError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_choice(value: str, choices: Iterable[str], what: str = "method") -> str:
    """Raise :class:`UnknownNameError` listing the valid choices unless ``value`` is one of them."""
    valid = list(choices)
    if value not in valid:
        raise UnknownNameError(f"unknown {what} {value!r}; valid choices: {', '.join(map(repr, valid))}")
    return value


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is > 0 (or >= 0 with ``allow_zero``)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


NAME_MAX_BYTES = 200  # a run folder is <name>-<YYYYmmdd-HHMMSS>[-k]: file names end at 255 bytes
NAME_RULE = (
    "a name becomes a folder name: use letters, digits, spaces and punctuation such as - _ . + = , @ "
    f"(no '/' or '\\', no control characters, not starting with '.', at most {NAME_MAX_BYTES} bytes)"
)


def check_name(value: str, what: str = "name") -> str:
    """Raise :class:`ConfigError` unless ``value`` can name one folder inside another; return it.

    Run names, sweep names and trial names become folder names (``<output_dir>/<name>-<timestamp>``,
    ``runs/sweeps/<name>``), so a name must not be empty, contain a path separator (``/``, ``\\``) or a
    control character (NUL included), start with ``.`` (``.``, ``..``, hidden folders) or with / end in
    spaces, or be longer than :data:`NAME_MAX_BYTES` bytes in UTF-8.

    Raises:
        ConfigError: what is wrong with the name, and which characters are allowed.
    """
    if not isinstance(value, str):
        raise ConfigError(f"{what}: expected a string, got {type(value).__name__}")
    problem = None
    if not value.strip():
        problem = "is empty"
    elif "/" in value or "\\" in value:
        problem = "contains a path separator"
    elif any(unicodedata.category(c) == "Cc" for c in value):
        problem = "contains a control character"
    elif value.startswith("."):
        problem = "starts with '.'"
    elif value != value.strip():
        problem = "starts or ends with a space"
    elif len(value.encode("utf-8")) > NAME_MAX_BYTES:
        problem = f"is {len(value.encode('utf-8'))} bytes long"
    if problem is not None:
        raise ConfigError(f"{what} {value!r} {problem}; {NAME_RULE}")
    return value


def check_inside(root: str | os.PathLike[str], path: str | os.PathLike[str], what: str = "folder") -> Path:
    """Raise :class:`ConfigError` unless ``path`` lies strictly inside the folder ``root``; return ``path``.

    The comparison is lexical (``..`` resolved, symbolic links not followed), so a name that climbs out of
    its parent is caught before anything is created.

    Raises:
        ConfigError: ``path`` is ``root`` itself or outside it (both named).
    """
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.abspath(path))
    if target == base or os.path.commonpath([base, target]) != base:
        raise ConfigError(f"{what} {path} is not inside {root}; {NAME_RULE}")
    return Path(path)


def check_fold_count(folds: int | None, n_images: int, data: str | os.PathLike[str]) -> int | None:
    """Raise :class:`ConfigError` unless ``folds`` is None or ``2 <= folds <= n_images``; return it.

    Raises:
        ConfigError: the fold count, the number of images and the dataset folder.
    """
    if folds is None:
        return None
    if isinstance(folds, bool) or not isinstance(folds, int):
        raise ConfigError(f"folds={folds!r}: the number of folds must be an integer (2 or more)")
    if folds < 2:
        raise ConfigError(
            f"folds={folds}: cross-validation needs at least 2 folds (each fold is tested by a model "
            "trained on the others)"
        )
    if folds > n_images:
        raise ConfigError(
            f"folds={folds}: more folds than images ({n_images} in {data}); use 2 <= folds <= {n_images}"
        )
    return folds


def check_device(device: str | torch.device) -> torch.device:
    """A ``torch.device`` that exists on this machine, or a one-line error: ``cuda`` without a GPU says so
    (instead of a CUDA traceback deep in the first forward pass).

    Example:
        >>> check_device("cpu")
        device(type='cpu')

    Raises:
        ConfigError: not a device name, or a device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ConfigError(
            f"device {device!r} is not a torch device (cpu, cuda, cuda:1, mps): {err}"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA GPU is available here (use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {device!r}: MPS is not available here (use cpu)")
    return dev
