"""The ``tinct`` command line (argument parsing only)."""

from tinct.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
