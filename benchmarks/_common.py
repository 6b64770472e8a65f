"""What every benchmark script shares: a rich table printer, the machine's description and the results
file that keeps the sections not run this time."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

__all__ = ["machine_info", "print_table", "write_results"]


def print_table(title: str, header: list[str], rows: list[list[Any]], digits: int = 2) -> None:
    """Print ``rows`` under ``header`` (first column left-aligned, floats with ``digits`` decimals)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in header:
        t.add_column(h, justify="left" if h == header[0] else "right")
    for r in rows:
        t.add_row(*(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in r))
    Console().print(t)


def machine_info() -> dict[str, Any]:
    """CPU, torch threads and torch version, recorded beside every result."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def write_results(out: Path, result: dict[str, Any]) -> None:
    """Merge ``result`` into the JSON file ``out``: sections not run this time keep their last results."""
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**previous, **result}, indent=2, default=float) + "\n")
    print(f"wrote {out}")
