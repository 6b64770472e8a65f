"""Foundations every layer shares: checks, errors, the registry, atomic files, progress, the typed config base
with its ``--set`` overrides, and split files."""

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
    "ConfigError",
    "DataError",
    "Registry",
    "RunDirError",
    "ShapeError",
    "TinctError",
    "TypeCheckError",
    "UnknownNameError",
    "check_channel_dim",
    "check_choice",
    "check_floating",
    "check_positive",
    "check_same_shape",
    "check_shape",
    "check_tensor",
]
