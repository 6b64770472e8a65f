"""The report page as blocks (headings, text, tables, figures), rendered to HTML or Markdown."""

from __future__ import annotations

import base64
import html
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Block", "Figure", "Heading", "Table", "Text", "fmt", "missing", "render_html", "render_md"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
td.text{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.9em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.8em;color:#555}
.note{color:#555;font-size:.9em}
"""


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Text:
    text: str
    note: bool = False


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    wrap_text: bool = False  # long free text (error messages)


@dataclass
class Figure:
    path: Path
    caption: str


Block = Heading | Text | Table | Figure


def missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt(v: Any, decimals: int | None = None, metric: bool = False) -> str:
    """A cell: ``-`` when missing, integers as such, floats with ``decimals`` or 4 significant digits (kept
    trailing zeros for metrics, so a column of scores lines up)."""
    import numpy as np

    if missing(v):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if decimals is not None:
            return f"{v:.{decimals}f}"
        return f"{v:#.4g}" if metric else f"{v:.4g}"
    return str(v)


# -- HTML ---------------------------------------------------------------------------------------------


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = []
        for cell, num in zip(row, t.numeric, strict=True):
            cls = ' class="num"' if num else ' class="text"' if t.wrap_text else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table></div>"
    )


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained page: inline CSS, figures as base64 PNG ``data:`` URIs, no scripts, no links."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            cls = ' class="note"' if b.note else ""
            parts.append(f"<p{cls}>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            parts.append(_html_table(b))
        else:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            cap = html.escape(b.caption)
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- Markdown -----------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    # Markdown renders raw HTML: a run called <b>x</b> must read as written, and | would split a cell.
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def render_md(blocks: Sequence[Block], out: Path, fig_dir: Path) -> str:
    """Markdown of the page written to ``out``: figures outside ``fig_dir`` (a study's own) are copied into
    ``fig_dir/studies/``, every figure is linked relative to ``out``."""
    lines: list[str] = []
    copied = 0
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + _md_escape(b.text), ""]
        elif isinstance(b, Text):
            lines += [("*" + _md_escape(b.text) + "*") if b.note else _md_escape(b.text), ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(_md_escape(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in b.numeric) + "|")
            lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        else:
            path = b.path
            if fig_dir not in path.parents:  # a study's own figure: copied, so the report folder stands alone
                copied += 1
                path = fig_dir / "studies" / f"{copied:02d}-{path.name}"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(b.path, path)
            rel = Path(os.path.relpath(path, out.parent)).as_posix()
            caption = _md_escape(b.caption).replace("[", "(").replace("]", ")")
            lines += [f"![{caption}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"
