"""What the web demo's tabs do (Colorize, White balance, Patch colour), without a browser.

:class:`DemoHandlers` holds each tab's work as plain methods over :mod:`tinct.api` (tests call them
directly); :mod:`tinct.demo.app` lays them out as a Gradio app. Gradio is imported only when a handler runs
(:func:`import_gradio`; ``pip install -e ".[demo]"``, without it a one-line
:class:`~tinct.core.exceptions.ConfigError`).

Errors tinct raises on purpose (:class:`~tinct.core.exceptions.TinctError`: a corrupt file, a hint outside
the photo) reach the page as one-line messages (``gradio.Error``) naming the uploaded file by its own name,
never a traceback; anything else is logged on the server with its traceback and shown as one line too.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tinct.core.exceptions import ConfigError, TinctError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_HINT_COLOUR",
    "ESTIMATE_COLUMNS",
    "HINT_COLUMNS",
    "METADATA_COLUMNS",
    "DemoHandlers",
    "import_gradio",
    "parse_colour",
]

LOG = logging.getLogger("tinct.demo")

#: The oldest Gradio the demo runs on (its layout and launch options are Gradio 6's).
GRADIO_MAJOR = 6
INSTALL_HINT = 'the web demo needs Gradio: pip install -e ".[demo]" (or pip install "gradio>=6")'
#: Columns of the Colorize tab's hint table.
HINT_COLUMNS = ("x", "y", "colour")
#: The hint colour picker's starting colour (a saturated orange).
DEFAULT_HINT_COLOUR = "#e8641e"
#: Previews sent to the browser are shrunk to at most this many pixels on their long side.
PREVIEW_SIDE = 1280
#: The hint view (the photo's lightness with the hints drawn) is at most this many pixels on its long side.
HINT_VIEW_SIDE = 640
#: Small results (a crop, a thumbnail-sized file) are enlarged to at least this many pixels on their long side.
LEAST_PREVIEW_SIDE = 320
#: Colorization jobs whose PNG files are kept for download; older ones are removed (Gradio keeps its copy).
KEEP_JOBS = 16
#: Columns of the White balance tab's table of estimates.
ESTIMATE_COLUMNS = ("method", "r", "g", "b", "angle (°)")
#: Columns of the Patch colour tab's table of the metadata used.
METADATA_COLUMNS = ("metadata", "value")

F = TypeVar("F", bound=Callable[..., Any])


def import_gradio() -> Any:
    """The ``gradio`` module, with ``$GRADIO_ANALYTICS_ENABLED`` off unless the user set it.

    Raises:
        ConfigError: Gradio is not installed, or older than :data:`GRADIO_MAJOR` (one line saying how to
            install it).
    """
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as err:
        raise ConfigError(INSTALL_HINT) from err
    major = str(getattr(gradio, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < GRADIO_MAJOR:
        raise ConfigError(
            f"the web demo needs Gradio {GRADIO_MAJOR} or later, found {gradio.__version__}: "
            f'pip install -U "gradio>={GRADIO_MAJOR}"'
        )
    return gradio


def _shown(message: str, paths: Sequence[str | None]) -> str:
    """``message`` on one line, with each uploaded file's server-side path replaced by its own name."""
    text = " ".join(message.split())
    for p in paths:
        if p:
            text = text.replace(str(p), Path(p).name)
    return text


def _user_errors(method: F) -> F:
    """Turn what a handler raises into one-line ``gradio.Error`` messages (the uploaded files named by
    their own names): tinct's errors as they are, anything else prefixed by its type and logged with its
    traceback on the server."""

    @functools.wraps(method)
    def wrapper(self: DemoHandlers, *args: Any, **kwargs: Any) -> Any:
        gr = import_gradio()
        paths = [a for a in args if isinstance(a, str) and Path(a).is_file()]
        try:
            return method(self, *args, **kwargs)
        except gr.Error:
            raise
        except TinctError as err:
            raise gr.Error(_shown(str(err) or type(err).__name__, paths), print_exception=False) from None
        except Exception as err:
            LOG.exception("tinct demo: %s failed", method.__name__)
            text = _shown(f"{type(err).__name__}: {err}", paths)
            raise gr.Error(f"{text} (the server's log has the traceback)", print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def parse_colour(value: str) -> str:
    """A colour picker's value as ``#rrggbb``: ``#rgb``, ``#rrggbb``, ``#rrggbbaa`` or ``rgb(a)(r, g, b[, a])``.

    Raises:
        ConfigError: anything else.

    Example:
        >>> parse_colour("#F70"), parse_colour("rgba(232, 100, 30, 1)"), parse_colour("#e8641eff")
        ('#ff7700', '#e8641e', '#e8641e')
    """
    text = str(value).strip().lower()
    m = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})", text)
    if m:
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return "#" + digits[:6]
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)", text)
    if m and all(float(v) <= 255 for v in m.groups()):
        return "#" + "".join(f"{round(float(v)):02x}" for v in m.groups())
    raise ConfigError(f"hint colour {value!r} is not a colour like '#e8641e' or 'rgb(232, 100, 30)'")


def _uint8(image: np.ndarray) -> np.ndarray:
    """An ``H x W x 3`` (or ``H x W``) image in [0, 1] (or already 8-bit) as 8-bit RGB."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.dtype != np.uint8:
        a = np.rint(np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
    return a


def _preview(image: np.ndarray, side: int = PREVIEW_SIDE, least: int = 0) -> np.ndarray:
    """An image as 8-bit RGB, shrunk (area-averaged) to at most ``side`` pixels on its long side, or
    enlarged (each pixel a square) to at least ``least`` where it is smaller."""
    from PIL import Image

    a = _uint8(image)
    h, w = a.shape[:2]
    if 0 < max(h, w) < least:
        k = -(-least // max(h, w))
        return np.repeat(np.repeat(a, k, axis=0), k, axis=1)
    if max(h, w) <= side:
        return a
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BOX))


def _read_photo(path: str) -> np.ndarray:
    """The photo upright as sRGB ``H x W x 3`` float32 in [0, 1] (tinct's reader: EXIF orientation, ICC)."""
    from tinct.colorization.photos import read_photo

    return read_photo(path)


def _lightness_gray(rgb: np.ndarray) -> np.ndarray:
    """The photo's CIELAB L* alone (a* = b* = 0) as sRGB in [0, 1]: what a colorizer sees."""
    import torch

    from tinct.color.lab import lab_to_rgb, rgb_to_lab

    t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    lab = rgb_to_lab(t)
    lab[1:] = 0.0
    return lab_to_rgb(lab).clamp(0.0, 1.0).numpy().transpose(1, 2, 0)


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.ptp(rgb, axis=-1).max(initial=0.0) < 1.0 / 255.0)


def _hint_points(hints: Sequence[Sequence[Any]] | pd.DataFrame | None) -> list[dict[str, Any]]:
    """The hint table's rows (x, y, colour) as the points :func:`tinct.api.colorize` takes."""
    if hints is None:
        return []
    rows = hints.values.tolist() if hasattr(hints, "values") else list(hints)
    points = []
    for row in rows:
        if len(row) < 3 or any(v is None or v == "" or (isinstance(v, float) and v != v) for v in row[:3]):
            continue
        points.append({"x": float(row[0]), "y": float(row[1]), "hex": parse_colour(str(row[2]))})
    return points


def _hint_table(points: Sequence[Sequence[Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([list(p) for p in points], columns=list(HINT_COLUMNS))


def _draw_hints(image: np.ndarray, points: Sequence[dict[str, Any]]) -> np.ndarray:
    """``image`` (8-bit) with each hint drawn as a dot of its colour ringed in black and white."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(_uint8(image))
    draw = ImageDraw.Draw(im)
    r = max(3, round(min(im.size) / 60))
    for p in points:
        x, y = p["x"], p["y"]
        draw.ellipse((x - r - 2, y - r - 2, x + r + 2, y + r + 2), fill="white")
        draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), fill="black")
        draw.ellipse((x - r, y - r, x + r, y + r), fill=p["hex"])
    return np.asarray(im)


def _draw_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """``image`` (8-bit) with ``box`` ``(x0, y0, x1, y1)`` (pixels, end exclusive) outlined in black and yellow."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(_uint8(image))
    draw = ImageDraw.Draw(im)
    x0, y0, x1, y1 = (float(v) for v in box)
    width = max(2, round(min(im.size) / 150))
    draw.rectangle((x0 - width, y0 - width, x1 - 1 + width, y1 - 1 + width), outline="black", width=width)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=(255, 220, 0), width=width)
    return np.asarray(im)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """The angle in degrees between two RGB triplets (:func:`tinct.color.illuminant.angular_error`)."""
    import torch

    from tinct.color.illuminant import angular_error

    t = angular_error(
        torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), dim=-1
    )
    return float(t)


class DemoHandlers:
    """What the demo's tabs do, as methods a test can call without a browser.

    Each method takes what its Gradio inputs hold (an uploaded file's path, a dropdown's label ...) and
    returns what its outputs show; on a bad file or option it raises a one-line ``gradio.Error``. Models
    are loaded by :mod:`tinct.api` on first use and kept (one per model) for the server's lifetime.

    Args:
        device: where the models run (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...).
        workdir: folder for the PNG files offered for download (default: a temporary folder removed when
            this object is collected or the process exits).
    """

    def __init__(self, device: str = "cpu", workdir: str | Path | None = None) -> None:
        self.device = device
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tinct-demo-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self._lock = threading.Lock()
        self._jobs = 0
        # The last photo's lightness preview (path, 8-bit image, photo pixels per preview pixel): each
        # click on the photo redraws the hints without reading the photo again.
        self._lightness: tuple[str | None, np.ndarray | None, float] = (None, None, 1.0)

    @staticmethod
    def api() -> Any:
        from tinct import api

        return api

    def colorizer_choices(self) -> list[str]:
        """The model dropdown's labels (:data:`tinct.api.COLORIZER_CHOICES`), the default first."""
        return list(self.api().COLORIZER_CHOICES)

    def _model(self, label: str | None) -> str | None:
        choices = self.api().COLORIZER_CHOICES
        if label is None:
            return None
        if label not in choices:
            raise ConfigError(f"unknown model {label!r}; choose one of: {', '.join(choices)}")
        return choices[label]

    def takes_hints(self, label: str | None) -> bool:
        return bool(self.api().takes_hints(self._model(label)))

    def _job_dir(self) -> Path:
        """A new folder for one job's downloads; the oldest beyond :data:`KEEP_JOBS` are removed."""
        with self._lock:
            self._jobs += 1
            job = self.workdir / f"job{self._jobs:06d}"
            job.mkdir(parents=True)
            old = sorted(self.workdir.glob("job*"))[:-KEEP_JOBS]
        for d in old:
            shutil.rmtree(d, ignore_errors=True)
        return job

    # -- Colorize -----------------------------------------------------------------------------------

    @_user_errors
    def add_hint(
        self,
        photo: str | None,
        hints: pd.DataFrame | None,
        colour: str,
        index: Sequence[int] | None,
        model: str | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Add a hint point where the photo was clicked (``index``: pixel ``[x, y]`` of the upright photo).

        A click while a model without hint channels is chosen (``model``, a label) adds nothing.

        Returns:
            ``(table, preview)``: the hint table with the new row, and the photo's lightness (what the
            model sees, at most :data:`HINT_VIEW_SIDE` on its long side) with every hint drawn on it.
        """
        if photo is None:
            raise ConfigError("upload a photo first, then click on it to add colour hints")
        points = _hint_points(hints)
        if index is not None and len(index) >= 2 and (model is None or self.takes_hints(model)):
            points.append({"x": int(index[0]), "y": int(index[1]), "hex": parse_colour(colour)})
        return self._hint_outputs(photo, points)

    def _hint_outputs(
        self, photo: str | None, points: list[dict[str, Any]]
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        table = _hint_table([(p["x"], p["y"], p["hex"]) for p in points])
        if photo is None:
            return table, None
        with self._lock:
            cached = self._lightness if self._lightness[0] == photo else None
        if cached is None:
            rgb = _read_photo(photo)
            small = _preview(rgb, side=HINT_VIEW_SIDE).astype(np.float32) / 255.0
            cached = (photo, _uint8(_lightness_gray(small)), rgb.shape[1] / small.shape[1])
            with self._lock:
                self._lightness = cached
        _, gray, scale = cached
        shown = [{**p, "x": (p["x"] + 0.5) / scale - 0.5, "y": (p["y"] + 0.5) / scale - 0.5} for p in points]
        return table, _draw_hints(gray, shown)

    @_user_errors
    def clear_hints(self, photo: str | None) -> tuple[pd.DataFrame, np.ndarray | None]:
        """An empty hint table (and the bare lightness preview of ``photo``, when there is one)."""
        return self._hint_outputs(photo, [])

    @_user_errors
    def colorize(
        self,
        photo: str | None,
        model: str | None = None,
        temperature: float | None = None,
        hints: pd.DataFrame | Sequence[Sequence[Any]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Colorize the uploaded photo.

        Args:
            photo: the uploaded file.
            model: a label of :data:`tinct.api.COLORIZER_CHOICES` (None: the shipped default).
            temperature: annealed-mean temperature of classification models (ECCV16); others ignore it.
            hints: rows ``(x, y, colour)`` of the hint table; used by models that take hints (SIGGRAPH17),
                a warning otherwise.

        Returns:
            ``(colorized, panel, files)``: the colorized photo (8-bit), the panel (lightness | colorized |
            original) and the paths of both as PNG files.
        """
        gr = import_gradio()
        if photo is None:
            raise ConfigError("upload a photo first")
        api = self.api()
        source = self._model(model)
        points = _hint_points(hints)
        with_hints = api.takes_hints(source)
        if points and not with_hints:
            gr.Warning(f"{model or 'this model'} takes no colour hints (a SIGGRAPH17 model does): ignored")
            points = []
        # Models with hint channels regress ab and have no temperature: leave it at theirs.
        original = _read_photo(photo)
        out = api.colorize(
            original, source, device=self.device, temperature=None if with_hints else temperature,
            hints=points or None,
        )  # fmt: skip
        panel = api.colorize_panel(
            _lightness_gray(original), out, original=None if _is_gray(original) else original
        )
        from tinct.io.image import write_image

        job = self._job_dir()
        stem = Path(photo).stem
        colorized = _uint8(out)
        files = [
            str(write_image(job / f"{stem}_color.png", colorized)),
            str(write_image(job / f"{stem}_panel.png", _uint8(panel))),
        ]
        return colorized, _uint8(panel), files

    # -- White balance ------------------------------------------------------------------------------

    @_user_errors
    def white_balance(self, path: str | None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, str]:
        """Estimate the light of a raw, linear or JPEG file and balance it.

        Returns:
            ``(original, balanced, estimates, notes)``: the unbalanced and balanced sRGB previews (8-bit,
            at most :data:`PREVIEW_SIDE` on the long side), a table of the learned and classical estimates
            (unit-norm camera r, g, b and each one's angle to the learned estimate in degrees), and the
            warnings as Markdown (``""``: none).
        """
        import pandas as pd

        if path is None:
            raise ConfigError("upload a camera raw file, a 16-bit linear PNG/TIFF, a .npy array or a JPEG")
        wb = self.api().white_balance(path, device=self.device)
        learned = np.asarray(wb.illuminant, dtype=np.float64)
        rows = [["learned (shipped)", *_unit_rgb(learned), 0.0]]
        for name, est in wb.classical.items():
            est = np.asarray(est, dtype=np.float64)
            rows.append([name.replace("_", " "), *_unit_rgb(est), round(_angle(est, learned), 2)])
        text = "\n".join(f"- ⚠️ {_shown(n, [path])}" for n in dict.fromkeys(wb.warnings))
        least = LEAST_PREVIEW_SIDE
        return (
            _preview(wb.original, least=least),
            _preview(wb.preview, least=least),
            pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)),
            text,
        )

    # -- Patch colour -------------------------------------------------------------------------------

    @_user_errors
    def patch(
        self, photo: str | None
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray, pd.DataFrame]:
        """Find the uniform patch in a photo and predict its CIELAB colour from it and the photo's EXIF.

        Returns:
            ``(marked, crop, lab, swatch, metadata)``: the photo with the patch's box drawn, the crop, a
            one-row table of L*, a*, b* (D65) and the swatch's sRGB hex, the swatch, and the EXIF values
            the model used.
        """
        import pandas as pd

        if photo is None:
            raise ConfigError("upload a photo of the patch (with its EXIF)")
        pred = self.api().patch_prediction(photo, device=self.device)
        lab = np.asarray(pred.lab, dtype=np.float64).reshape(3)
        swatch = _uint8(pred.swatch)
        hex_ = "#" + "".join(f"{int(v):02x}" for v in swatch[swatch.shape[0] // 2, swatch.shape[1] // 2])
        table = pd.DataFrame(
            [{"L*": round(lab[0], 2), "a*": round(lab[1], 2), "b*": round(lab[2], 2), "sRGB": hex_}]
        )
        metadata = pd.DataFrame(
            [[str(k), _value(v)] for k, v in dict(pred.metadata).items()],
            columns=list(METADATA_COLUMNS),
        )
        marked = _read_photo(photo)
        if pred.box is not None:  # None: a model trained on whole photos
            marked = _draw_box(marked, pred.box)
        least = LEAST_PREVIEW_SIDE
        return _preview(marked, least=least), _preview(pred.crop, least=least // 2), table, swatch, metadata


def _value(value: Any) -> str:
    """A metadata value for the table: numbers to 4 significant digits, None as unknown."""
    if value is None:
        return "unknown"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def _unit_rgb(rgb: np.ndarray) -> list[float]:
    """``rgb`` scaled to unit length, each channel rounded to 4 decimals."""
    unit = rgb.reshape(3) / max(float(np.linalg.norm(rgb)), 1e-12)
    return [round(float(v), 4) for v in unit]
