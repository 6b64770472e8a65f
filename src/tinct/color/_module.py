"""The base of tinct.color's ``nn.Module`` twins: ``forward`` only delegates to the pure function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

__all__ = ["FunctionModule"]


class FunctionModule(nn.Module):
    """``forward(*tensors)`` returns ``function(*tensors, **options)``; options are stored as attributes.

    Subclasses set ``function = staticmethod(f)`` and spell out their ``__init__`` signature (so
    documentation and IDEs show the options), passing the options on as keywords.
    """

    function: ClassVar[Callable[..., Tensor]]

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._options = tuple(options)
        for name, value in options.items():
            setattr(self, name, value)

    def forward(self, *tensors: Tensor) -> Tensor:
        return type(self).function(*tensors, **{name: getattr(self, name) for name in self._options})

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self._options)
