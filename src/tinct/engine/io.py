"""Atomic file writes; they live in :mod:`tinct.core.io` so data generators can use them too."""

from tinct.core.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["atomic_torch_save", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
