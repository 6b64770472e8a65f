"""Progress bars for long loops: a rich bar on a terminal, nothing when disabled or not a TTY."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["track"]

T = TypeVar("T")


def track(
    items: Iterable[T], description: str = "working", total: int | None = None, enabled: bool = True
) -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar (elapsed, remaining time) when ``enabled``.

    Off a terminal (CI logs, redirected output) the bar is replaced by nothing, so logs stay readable.
    """
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        yield from bar.track(items, total=total, description=description)
