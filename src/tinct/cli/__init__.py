"""The ``tinct`` command line: argument parsing, one module per domain, and the quickstart that runs every
domain."""

from tinct.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
