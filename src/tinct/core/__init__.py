"""Foundations shared by every part of tinct: validation checks, exceptions and the registry."""

from tinct.core.checks import (
    check_channel_dim,
    check_choice,
    check_floating,
    check_positive,
    check_same_shape,
    check_shape,
    check_tensor,
)
from tinct.core.exceptions import (
    ConfigError,
    DataError,
    RunDirError,
    ShapeError,
    TinctError,
    TypeCheckError,
    UnknownNameError,
)
from tinct.core.registry import Registry

__all__ = [
    "Registry",
    "TinctError",
    "ShapeError",
    "TypeCheckError",
    "UnknownNameError",
    "ConfigError",
    "DataError",
    "RunDirError",
    "check_tensor",
    "check_floating",
    "check_shape",
    "check_channel_dim",
    "check_same_shape",
    "check_choice",
    "check_positive",
]
