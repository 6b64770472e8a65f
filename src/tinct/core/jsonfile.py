"""Reading a JSON file a user wrote: one-line errors naming the file, and no silently repeated keys.

``json.loads`` keeps the last of two equal keys in an object, so a hint or box file that names a photo twice
would quietly lose half of its entries; :func:`read_json` refuses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tinct.core.exceptions import DataError

__all__ = ["read_json"]


def read_json(path: str | os.PathLike[str], what: str, empty: str = "") -> Any:
    """The JSON value in ``path`` (UTF-8, with or without a byte-order mark).

    Args:
        path: the file.
        what: what the file is, for messages ("hint file", "box file").
        empty: what the message for an empty file adds (e.g. an example of the expected content).

    Raises:
        DataError: the file cannot be read, is empty, is not valid JSON (line and column named) or repeats a
            key in one object; each message is one line starting with the file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = Path(d) / "a.json"
        ...     _ = p.write_text('{"a": 1, "a": 2}')
        ...     try:
        ...         read_json(p, "box file")
        ...     except DataError as err:
        ...         print(str(err).split(": ", 1)[1])
        key(s) 'a' given twice in one object
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{p}: cannot read the {what} ({err})") from err
    if not text.strip():
        raise DataError(f"{p}: empty {what}" + (f"; {empty}" if empty else ""))

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise DataError(f"{p}: key(s) {', '.join(map(repr, repeated))} given twice in one object")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        raise DataError(f"{p}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
