"""The INTEL-TAU sample layout: ``<name>.png`` plus ``<name>_metadata.json``.

Each 16-bit PNG (black level already subtracted, saturated pixels at 65535) has a JSON file beside it with
the ground-truth illuminant as ``{"illuminant_color_raw": [r, g, b]}``. This is how the INTEL-TAU images
shipped with the C5 repository are stored; ``tinct data convert-constancy`` turns such a folder into the
generic layout if a ``gt.csv`` is preferred.

References:
    Laakom, F. et al. (2021). INTEL-TAU: A color constancy dataset. IEEE Access 9.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from tinct.core.exceptions import DataError

__all__ = ["is_intel_tau", "read_intel_tau"]

_SUFFIX = "_metadata.json"


def is_intel_tau(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds ``*_metadata.json`` files and no ``gt.csv``."""
    r = Path(root)
    return not (r / "gt.csv").is_file() and any(r.glob(f"*{_SUFFIX}"))


def read_intel_tau(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The validated table of an INTEL-TAU style folder: columns ``image, path, r, g, b``.

    Raises:
        DataError: a PNG without its JSON (or the reverse), unreadable JSON, a missing
            ``illuminant_color_raw`` key, or a non-finite / non-positive illuminant; each names the file.
    """
    r = Path(root)
    rows = []
    pngs = sorted(p for p in r.iterdir() if p.suffix.lower() in (".png", ".tif", ".tiff"))
    stems = {p.stem for p in pngs}
    for meta in sorted(r.glob(f"*{_SUFFIX}")):
        if meta.name.removesuffix(_SUFFIX) not in stems:
            raise DataError(f"{meta}: metadata without its image ({meta.name.removesuffix(_SUFFIX)}.png)")
    for p in pngs:
        meta = p.with_name(p.stem + _SUFFIX)
        if not meta.is_file():
            raise DataError(f"{p}: no ground truth ({meta.name} missing)")
        try:
            rgb = json.loads(meta.read_text())["illuminant_color_raw"]
            rgb = np.asarray(rgb, dtype=np.float64).reshape(3)
        except KeyError as err:
            raise DataError(f"{meta}: key 'illuminant_color_raw' missing") from err
        except Exception as err:
            raise DataError(f"{meta}: cannot read the illuminant ({err})") from err
        if not np.isfinite(rgb).all() or (rgb <= 0).any():
            raise DataError(f"{meta}: illuminant must be finite and positive, got {rgb.tolist()}")
        rows.append({"image": p.name, "path": str(p), "r": rgb[0], "g": rgb[1], "b": rgb[2]})
    if not rows:
        raise DataError(f"{r}: no images with {_SUFFIX} ground truth")
    return pd.DataFrame(rows)
