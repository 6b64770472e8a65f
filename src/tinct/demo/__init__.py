"""The tinct web demo (``tinct serve``): colorize a photo, white-balance a raw file, predict a patch's colour.

A Gradio app (the optional extra ``pip install -e ".[demo]"``) over :mod:`tinct.api`, running the shipped
models on the CPU. It binds the loopback address by default, never opens a public share link, sends no
analytics and loads no web fonts (system fonts only), so it works on a machine without internet.
Gradio is imported only when the demo is built: importing this package costs nothing.
"""

from __future__ import annotations

from tinct.demo.app import build_demo, launch

__all__ = ["build_demo", "launch"]
