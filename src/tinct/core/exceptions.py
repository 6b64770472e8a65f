"""Exceptions raised by tinct.

Every validation in tinct goes through :mod:`tinct.core.checks`, which raises one of these. Each
subclasses the built-in exception a caller would naturally catch (``ValueError``, ``TypeError``), so
``except ValueError`` keeps working for code that does not know tinct.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DataError",
    "RunDirError",
    "ShapeError",
    "TinctError",
    "TypeCheckError",
    "UnknownNameError",
    "some_of",
]


def some_of(names: Sequence[object], most: int = 5, sep: str = ", ") -> str:
    """The first ``most`` of ``names`` for an error message, with how many more there are, joined by
    ``sep`` (``"; "`` for items that hold commas themselves).

    Example:
        >>> some_of(["a.npy", "b.npy", "c.npy"], most=2)
        'a.npy, b.npy, ... (1 more)'
    """
    shown = sep.join(str(n) for n in names[:most])
    return shown + (f"{sep}... ({len(names) - most} more)" if len(names) > most else "")


class TinctError(Exception):
    """Base class of every error tinct raises on purpose."""


class ShapeError(TinctError, ValueError):
    """A tensor has the wrong number of dimensions or the wrong size along one of them."""


class TypeCheckError(TinctError, TypeError):
    """An argument has the wrong type or dtype (e.g. an integer image where floats are needed)."""


class UnknownNameError(TinctError, ValueError):
    """A name (method, model, task ...) is not one of the valid choices; the message lists them."""


class ConfigError(TinctError, ValueError):
    """An experiment configuration is invalid; the message names the file and the field."""


class DataError(TinctError, ValueError):
    """A data file is missing, unreadable or inconsistent; the message names the file and the problem."""


class RunDirError(TinctError, FileNotFoundError):
    """A run directory is missing or lacks what the command needs (config, checkpoint)."""
