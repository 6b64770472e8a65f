"""Atomic file writes (used by data generators and the engine alike): a crash mid-write never leaves a truncated config, metrics file or checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_torch_save", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets it meanwhile, so
    a file another thread creates at that moment would get mode 0666)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a new temporary file in the same folder, fsync it, then rename it over ``path``.

    The temporary file is created by :func:`tempfile.mkstemp` (``O_CREAT | O_EXCL``, an unpredictable
    name), so no file or symbolic link already in the folder is ever written through. A symbolic link at
    ``path`` itself is replaced by the new file; its target is left alone. On any failure the temporary
    file is removed and a file already at ``path`` is untouched.

    The file gets the permissions of an ordinary new file (0666 minus the umask), not the owner-only
    mode of the temporary file, so run directories stay readable by a group as any other file would.

    Raises:
        OSError: the folder cannot be created or written (``PermissionError`` when not writable).
        TypeError: ``data`` is not bytes-like.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name[:100]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file and rename it into place."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())
