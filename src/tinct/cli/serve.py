"""``tinct serve``: the web demo in the browser (:mod:`tinct.demo`; needs ``pip install -e ".[demo]"``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "run"]

DESCRIPTION = (
    "Serves the tinct web demo at http://HOST:PORT (the loopback address by default: only this machine "
    "reaches it). Tabs: Colorize (upload a photo, pick a shipped model, click colour hints for SIGGRAPH17, "
    "download the result and the panel as PNG), White balance (a camera raw file, a 16-bit linear PNG/TIFF, "
    "a .npy array or a JPEG: the learned and the classical illuminant estimates and a balanced preview) and "
    "Patch colour (a photo with EXIF: the patch found, its predicted CIELAB and a swatch). Runs the shipped "
    "models on the CPU by default; nothing is downloaded, no analytics are sent, no public link is made. "
    'Needs the optional extra: pip install -e ".[demo]" (Gradio). Ctrl-C stops it.'
)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port in 1..65535, got {text!r}")
    return port


def add_parsers(sub: Any) -> None:
    """Add ``serve`` to the command subparsers."""
    s = sub.add_parser(
        "serve",
        help='web demo in the browser: colorize, white balance, patch colour (needs pip install -e ".[demo]")',
        description=DESCRIPTION,
    )
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every network it is on)",
    )
    s.add_argument("--port", type=_port, default=7860, help="TCP port (default: 7860)")
    s.add_argument("--device", default="cpu", help="where the models run: cpu (default), cuda, cuda:1, mps")
    s.add_argument("--open", action="store_true", help="open the page in the default web browser")


def run(args: argparse.Namespace) -> int:
    from tinct.demo.app import launch

    launch(args.host, args.port, args.device, open_browser=args.open)
    return 0
