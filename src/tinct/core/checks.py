"""The one validation path of tinct (shapes, dtypes, names).

Modelled on kornia's ``KORNIA_CHECK_SHAPE``: a shape is described by a list of tokens, ``"*"`` for any
number of leading dimensions, a number for a fixed size and a letter for a free size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from tinct.core.exceptions import ShapeError, TypeCheckError, UnknownNameError

__all__ = [
    "check_channel_dim",
    "check_choice",
    "check_floating",
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
