"""The ``tinct`` command line (argument parsing only)."""

from tinct.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
