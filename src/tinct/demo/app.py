"""The web demo's app: three tabs over :mod:`tinct.api` (Colorize, White balance, Patch colour).

:func:`build_demo` lays out the tabs' functions (:class:`~tinct.demo.handlers.DemoHandlers`, which tests call
without a browser) as a :class:`gradio.Blocks` app and :func:`launch` serves it. Gradio is imported only
inside these functions (``pip install -e ".[demo]"``; without it they raise one-line
:class:`~tinct.core.exceptions.ConfigError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinct.core.exceptions import ConfigError
from tinct.demo.handlers import (
    DEFAULT_HINT_COLOUR,
    ESTIMATE_COLUMNS,
    HINT_COLUMNS,
    METADATA_COLUMNS,
    DemoHandlers,
    _hint_table,
    import_gradio,
    parse_colour,
)

if TYPE_CHECKING:
    import gradio

# DemoHandlers, import_gradio, parse_colour and the column names are re-exported: they lived here before
# the handlers got their own module.
__all__ = [
    "DEFAULT_HINT_COLOUR",
    "HINT_COLUMNS",
    "DemoHandlers",
    "build_demo",
    "import_gradio",
    "launch",
    "parse_colour",
]

#: The buttons of result images: no "share" (it would upload to a Hugging Face Space).
OUTPUT_BUTTONS = ["download", "fullscreen"]
#: The camera raw, linear and display-encoded files the White balance tab takes.
WHITE_BALANCE_TYPES = (
    ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw",
    ".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg",
)  # fmt: skip


def _read_by_tinct(component: Any) -> Any:
    """Let a file-path image input hand over files Pillow cannot open (corrupt, camera raw), so that
    tinct's reader says what is wrong with them (one line naming the file) instead of Gradio's generic
    error."""
    check = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return check(payload)
        except Exception:
            path = getattr(payload, "path", None)
            if path is None:
                raise
            return str(path)

    component.preprocess = preprocess
    return component


def _theme(gr: Any) -> Any:
    """Gradio's default theme with system fonts only: no stylesheet from a font server."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


ABOUT = """# tinct demo
Learning colour from images, on the CPU with the models shipped with tinct. Nothing leaves this machine."""

COLORIZE_HELP = (
    "Upload a photo and press **Colorize**. With a SIGGRAPH17 model you can steer the colours: pick a "
    "colour, then click on the photo where it belongs (each click adds a hint point; **Clear hints** "
    "removes them). The photo's own colours are thrown away: the model sees only its lightness."
)
WHITE_BALANCE_HELP = (
    "Upload a camera raw file (DNG, CR2, NEF, ARW ...), a 16-bit linear PNG/TIFF or a float `.npy` array "
    "(linear camera RGB). A JPEG works too, but it is display-encoded and only approximately linearised. "
    "The learned estimator (FFCC trained on Cube+, Canon 550D) is shown beside the classical ones."
)
PATCH_HELP = (
    "Upload a photo of a uniform patch (e.g. skin on a card) with its camera EXIF (exposure, ISO, "
    "aperture). The patch is found, cropped, and its CIELAB colour (D65) predicted from the crop and the EXIF."
)


def build_demo(device: str = "cpu", handlers: DemoHandlers | None = None) -> gradio.Blocks:
    """The demo as a Gradio app (not started: see :func:`launch`).

    Args:
        device: where the models run.
        handlers: the tabs' functions (default: ``DemoHandlers(device)``).

    Returns:
        A :class:`gradio.Blocks` with the tabs Colorize, White balance and Patch colour.

    Raises:
        ConfigError: Gradio is not installed.
    """
    gr = import_gradio()
    h = handlers if handlers is not None else DemoHandlers(device)
    choices = h.colorizer_choices()
    # The hints live on the server, in the session's state, as (photo, rows): Gradio keeps a State there
    # and runs the events of one concurrency group in the order they came, so a click on the photo right
    # after an upload, or Colorize right after a click, sees every hint before it (a table's value is
    # what the page held when the event left, which may lag behind). Hints of another photo are dropped.

    def rows_for(photo: Any, state: Any) -> list[Any]:
        return list(state[1]) if state and state[0] == photo else []

    def on_select(photo: Any, state: Any, colour: Any, label: Any, evt: Any) -> Any:
        table, view = h.add_hint(photo, rows_for(photo, state), colour, evt.index, label)
        return (photo, table.values.tolist()), table, view

    # Gradio finds its event data by resolved annotations, which postponed (string) ones defeat here.
    on_select.__annotations__ = {"evt": gr.SelectData}

    def on_photo(photo: Any) -> Any:
        table, view = h.clear_hints(photo)
        return (photo, []), table, view

    def on_colorize(photo: Any, label: Any, temperature: Any, state: Any) -> Any:
        return h.colorize(photo, label, temperature, rows_for(photo, state))

    def model_changed(label: str) -> Any:
        return gr.update(visible=h.takes_hints(label))

    with gr.Blocks(title="tinct demo", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(ABOUT)
        with gr.Tab("Colorize", id="colorize"):
            gr.Markdown(COLORIZE_HELP)
            with gr.Row():
                with gr.Column():
                    photo = gr.Image(
                        type="filepath", image_mode=None, sources=["upload"], label="Photo (click: add a hint)",
                        elem_id="colorize-input", height=320,
                    )  # fmt: skip
                    model = gr.Dropdown(choices, value=choices[0], label="Model", elem_id="colorize-model")
                    temperature = gr.Slider(
                        0.0, 1.0, value=0.38, step=0.01, elem_id="colorize-temperature",
                        label="Temperature (ECCV16: 0 = the most likely colour, 1 = the mean; others ignore it)",
                    )  # fmt: skip
                    run = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
                    with gr.Accordion(
                        "Colour hints (SIGGRAPH17): pick a colour, click on the photo",
                        visible=h.takes_hints(choices[0]),
                    ) as hint_box:
                        with gr.Row(equal_height=True):
                            colour = gr.ColorPicker(DEFAULT_HINT_COLOUR, label="Hint colour", scale=1)
                            clear = gr.Button("Clear hints", scale=1, elem_id="colorize-clear")
                        with gr.Row():
                            hints = gr.Dataframe(
                                _hint_table([]), headers=list(HINT_COLUMNS), interactive=False,
                                label="Hint points (pixels of the photo)", elem_id="colorize-hints", scale=1,
                            )  # fmt: skip
                            hint_view = gr.Image(
                                label="Hints on the lightness", interactive=False, height=200, buttons=["fullscreen"],
                                format="png", elem_id="colorize-hint-view", scale=1,
                            )  # fmt: skip
                with gr.Column():
                    colorized = gr.Image(
                        label="Colorized", interactive=False, format="png", elem_id="colorize-output", buttons=OUTPUT_BUTTONS,
                        height=320,
                    )  # fmt: skip
                    panel = gr.Image(
                        label="Lightness | colorized | original", interactive=False, format="png",
                        elem_id="colorize-panel", buttons=OUTPUT_BUTTONS,
                    )  # fmt: skip
                    files = gr.File(
                        label="Download (PNG)", file_count="multiple", interactive=False,
                        elem_id="colorize-files",
                    )  # fmt: skip
            _read_by_tinct(photo)
            hint_state = gr.State(None)
            group: dict[str, Any] = {"concurrency_id": "colorize", "concurrency_limit": 1}
            photo.select(
                on_select, [photo, hint_state, colour, model], [hint_state, hints, hint_view], **group
            )
            photo.change(on_photo, [photo], [hint_state, hints, hint_view], **group)
            clear.click(on_photo, [photo], [hint_state, hints, hint_view], **group)
            model.change(model_changed, [model], [hint_box])
            run.click(
                on_colorize, [photo, model, temperature, hint_state], [colorized, panel, files], **group
            )

        with gr.Tab("White balance", id="white-balance"):
            gr.Markdown(WHITE_BALANCE_HELP)
            with gr.Row():
                with gr.Column():
                    wb_file = gr.File(
                        label="Raw file, 16-bit linear PNG/TIFF, .npy or JPEG", type="filepath",
                        file_types=list(WHITE_BALANCE_TYPES), elem_id="wb-input",
                    )  # fmt: skip
                    wb_notes = gr.Markdown(elem_id="wb-notes")
                    wb_table = gr.Dataframe(
                        headers=list(ESTIMATE_COLUMNS), label="Estimated illuminant (unit camera RGB) and angle to the learned one",
                        interactive=False, elem_id="wb-table",
                    )  # fmt: skip
                with gr.Column():
                    wb_original = gr.Image(
                        label="As shot (unbalanced)",
                        interactive=False,
                        format="png",
                        elem_id="wb-original",
                        buttons=OUTPUT_BUTTONS,
                    )
                    wb_balanced = gr.Image(
                        label="Balanced (learned estimate)", interactive=False, format="png",
                        elem_id="wb-balanced", buttons=OUTPUT_BUTTONS,
                    )  # fmt: skip
            wb_file.upload(h.white_balance, [wb_file], [wb_original, wb_balanced, wb_table, wb_notes])

        with gr.Tab("Patch colour", id="patch"):
            gr.Markdown(PATCH_HELP)
            with gr.Row():
                with gr.Column():
                    patch_photo = gr.Image(
                        type="filepath", image_mode=None, sources=["upload"], label="Photo with EXIF",
                        elem_id="patch-input", height=360,
                    )  # fmt: skip
                    patch_meta = gr.Dataframe(
                        headers=list(METADATA_COLUMNS), label="Camera metadata used", interactive=False,
                        elem_id="patch-metadata",
                    )  # fmt: skip
                with gr.Column():
                    patch_marked = gr.Image(
                        label="Patch found",
                        interactive=False,
                        format="png",
                        elem_id="patch-found",
                        buttons=OUTPUT_BUTTONS,
                    )
                    with gr.Row():
                        patch_crop = gr.Image(
                            label="Crop",
                            interactive=False,
                            format="png",
                            elem_id="patch-crop",
                            buttons=OUTPUT_BUTTONS,
                            height=180,
                        )
                        patch_swatch = gr.Image(
                            label="Predicted colour", interactive=False, format="png",
                            elem_id="patch-swatch", buttons=OUTPUT_BUTTONS, height=180,
                        )  # fmt: skip
                    patch_lab = gr.Dataframe(
                        label="Predicted CIELAB (D65)", interactive=False, elem_id="patch-lab"
                    )
            _read_by_tinct(patch_photo)
            patch_photo.upload(
                h.patch, [patch_photo], [patch_marked, patch_crop, patch_lab, patch_swatch, patch_meta]
            )
    demo.queue(default_concurrency_limit=1)
    return demo


def _check_port(host: str, port: int) -> None:
    """Fail early, in one line, where ``host:port`` cannot be listened on (most often: a server is there)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself (uvicorn) does
        try:
            s.bind((host, port))
        except OSError as err:
            reason = err.strerror or str(err)
            raise ConfigError(
                f"{host}:{port}: cannot listen there ({reason}); if another server uses the port, choose "
                "another one (tinct serve --port)"
            ) from None


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    open_browser: bool = False,
    *,
    block: bool = True,
    quiet: bool = False,
) -> gradio.Blocks:
    """Build the demo and serve it at ``http://HOST:PORT`` (never through a public share link).

    Args:
        host: address to listen on; the loopback address by default (``0.0.0.0``: every network).
        port: TCP port.
        device: where the models run.
        open_browser: open the page in the default web browser.
        block: serve until interrupted (Ctrl-C), then stop the server and return; False: return at once,
            the server running in a thread (stop it with ``demo.close()``).
        quiet: print nothing (otherwise one line with the address).

    Returns:
        The :class:`gradio.Blocks` (closed when ``block``).

    Raises:
        ConfigError: Gradio is missing or too old, ``device`` is not a device of this machine, or the port
            cannot be listened on.
    """
    import sys

    from tinct.core.checks import check_device

    gr = import_gradio()
    check_device(device)
    _check_port(host, port)
    demo = build_demo(device)
    demo.launch(
        server_name=host, server_port=port, inbrowser=open_browser, share=False, ssr_mode=False,
        prevent_thread_lock=True, quiet=True, show_error=True, theme=_theme(gr),
        footer_links=["api", "settings"], mcp_server=False, pwa=False,
    )  # fmt: skip
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(f"tinct serve: the demo is at http://{shown}:{port} (Ctrl-C stops it)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"tinct serve: listening on {host}: anyone who can reach this machine can use the demo",
                file=sys.stderr,
                flush=True,
            )
    if block:
        demo.block_thread()
    return demo
