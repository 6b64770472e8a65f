"""Split files: the train / val / test membership written once and reused (``data.split_file``).

A sweep run with ``--test-split auto`` points every trial at one ``split.json``. The first run writes the
splits it drew; every later run reads them back, so no axis of the sweep (a split seed, a fraction) can
move an image between training and test::

    {"format": 1, "source": {...what was split...}, "train": [names], "val": [names], "test": [names]}

Names are file names relative to the data folder. Files added to the folder later are in no split and are
left out; a name in the file that the folder no longer has is an error naming both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinct.core.exceptions import ConfigError, DataError

__all__ = ["SPLITS", "fixed_splits"]

SPLITS = ("train", "val", "test")


def fixed_splits(
    path: str | os.PathLike[str],
    splits: Mapping[str, Sequence[str]],
    source: Mapping[str, Any],
    available: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """The splits stored in ``path``; on first use, ``splits`` are written there and returned.

    Args:
        path: the split file.
        splits: this run's own ``{"train": [...], "val": [...], "test": [...]}`` names.
        source: what was split (data kind, folder...): a later run on other data is refused.
        available: every name the data has now (default: the names of ``splits``).

    Raises:
        ConfigError: the file describes other data (``source`` differs).
        DataError: the file is not a split file, or names images the data no longer has.
    """
    from tinct.core.atomic import atomic_write_json

    p = Path(path)
    source = json.loads(json.dumps(dict(source), default=str))
    if not p.is_file():
        record = {"format": 1, "source": source, **{k: list(splits.get(k, [])) for k in SPLITS}}
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(p, record)
        return {k: list(splits.get(k, [])) for k in SPLITS}
    try:
        record = json.loads(p.read_text())
        stored = {k: [str(x) for x in record[k]] for k in SPLITS}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{p}: not a tinct split file ({err})") from err
    if record.get("source") != source:
        raise ConfigError(
            f"{p} holds the splits of other data ({record.get('source')}), not of {source}; "
            "use another split file for other data"
        )
    have = set(available if available is not None else [n for k in SPLITS for n in splits.get(k, [])])
    missing = [n for k in SPLITS for n in stored[k] if n not in have]
    if missing:
        raise DataError(
            f"{p}: {len(missing)} image(s) of the split file are not in the data any more "
            f"(first: {missing[0]!r})"
        )
    return stored
