"""The one generic name -> object registry (models, tasks, estimators ...).

Like torchvision's and timm's: registering a name twice raises, and a lookup of an unknown name lists
the valid ones. A registry can also be filled by installed packages through an entry-point group
(``[project.entry-points."tinct.tasks"]`` in a ``pyproject.toml``): each entry point names the module
that registers that name, and is imported only when the name is first looked up. This is how the engine
finds the tasks of the domain packages without importing them (layers point down), and how a third-party
package adds its own task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from tinct.core.exceptions import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories.

    Example:
        >>> models = Registry("model")
        >>> @models.register("tiny")
        ... def tiny(width: int = 8) -> dict:
        ...     return {"width": width}
        >>> models.build("tiny", width=4)
        {'width': 4}
        >>> "tiny" in models
        True
    """

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.group = entry_points
        self._items: dict[str, T] = {}
        self._pending: dict[str, metadata.EntryPoint] | None = None  # entry points not imported yet

    # -- entry points ------------------------------------------------------------------------------
    def _plugins(self) -> dict[str, metadata.EntryPoint]:
        if self._pending is None:
            found = metadata.entry_points(group=self.group) if self.group else ()
            self._pending = {ep.name: ep for ep in found}
        return self._pending

    def _load(self, name: str) -> None:
        ep = self._plugins().pop(name, None)
        if ep is None or name in self._items:
            return
        obj = ep.load()  # importing the module registers the name (a decorator in it)
        if name not in self._items:
            if isinstance(obj, type) or callable(obj):
                self._items[name] = obj
            else:
                raise ValueError(
                    f"entry point {ep.value!r} of group {self.group!r} registered no {self.kind} {name!r}"
                )

    def _load_all(self) -> None:
        for name in list(self._plugins()):
            self._load(name)

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot register {obj!r} as a {self.kind} without a name")
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise :class:`UnknownNameError` listing the names."""
        if name not in self._items:
            self._load(name)
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(map(repr, self.names()))}"
            ) from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Call the factory registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        """The registered names, sorted (entry points of the registry's group included)."""
        self._load_all()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name not in self._items:
            self._load(name)
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
