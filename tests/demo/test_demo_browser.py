"""The web demo in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

The demo is served in-process on a free loopback port; the page is opened, a colour photo uploaded on the
Colorize tab and the result read back from the server, then a 16-bit linear PNG on the White balance tab.
Skipped when Playwright, Gradio or ``/usr/bin/chromium`` is missing, unless ``TINCT_REQUIRE_BROWSER`` is
set (CI sets it: there a missing browser fails). ``TINCT_DEMO_SCREENSHOT=PATH`` also copies the Colorize
screenshot to PATH (the README's picture).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Gradio 6's queue calls pandas options that pandas 3 deprecates (not this project's code).
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root without a sandbox; the background-networking flags keep Chromium from calling out
# (no update checks, no component downloads), which on a machine without internet stalls or fails.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 30_000


def _require_browser() -> None:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        missing.append('gradio (pip install -e ".[demo]")')
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        message = "the browser test needs " + ", ".join(missing)
        if os.environ.get("TINCT_REQUIRE_BROWSER", "").strip() not in ("", "0"):
            pytest.fail(message + " (TINCT_REQUIRE_BROWSER is set)")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo served in-process on a free loopback port; Gradio's uploads and results go to a
    temporary folder of the test (its default is a shared ``/tmp/gradio``)."""
    _require_browser()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        env.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        from tinct.demo import launch

        port = _free_port()
        demo = launch(port=port, block=False, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            demo.close()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh page on the demo that records every request and every script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/", wait_until="load")
    page.wait_for_selector("#colorize-button")
    yield page
    outside = [
        u for u in requests if not u.startswith((server + "/", "data:", "blob:", "about:"))
    ]  # fmt: skip
    assert outside == [], f"the page asked for something outside the demo: {outside[:5]}"
    assert errors == [], f"script errors on the page: {errors[:3]}"
    context.close()


def _fetch_image(page: Any, selector: str) -> np.ndarray:
    """The pixels of the ``<img>`` inside ``selector``, fetched from the server by its ``src``."""
    from PIL import Image

    img = page.locator(f"{selector} img").first
    img.wait_for(state="visible")
    src = img.get_attribute("src")
    assert src, f"{selector}: the image has no src"
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    with Image.open(io.BytesIO(response.body())) as im:
        return np.asarray(im.convert("RGB"))


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) by scikit-image: a reference independent of tinct's own conversion."""
    from skimage.color import rgb2lab

    return rgb2lab(rgb.astype(np.float64) / 255.0)


def test_colorize_in_browser(page: Any, tmp_path: Path) -> None:
    from PIL import Image
    from skimage.data import chelsea

    photo = chelsea()  # 300 x 451, a colour photo shipped inside scikit-image
    path = tmp_path / "chelsea.png"
    Image.fromarray(photo).save(path)

    page.locator("#colorize-input input[type=file]").set_input_files(str(path))
    shown = page.locator("#colorize-input img").first
    shown.wait_for(state="visible")
    page.wait_for_function(
        "() => { const i = document.querySelector('#colorize-input img'); return i && i.naturalWidth > 0; }"
    )
    # A hint on the cat's cheek: the click lands in the hint table in the photo's own pixels.
    fx, fy = 0.25, 0.7
    box = shown.evaluate(
        "i => { const r = i.getBoundingClientRect(); const s = Math.min(r.width / i.naturalWidth, "
        "r.height / i.naturalHeight); return {w: i.naturalWidth * s, h: i.naturalHeight * s, "
        "x: (r.width - i.naturalWidth * s) / 2, y: (r.height - i.naturalHeight * s) / 2}; }"
    )  # the picture inside the element (object-fit: contain may centre it)
    shown.click(position={"x": box["x"] + fx * box["w"], "y": box["y"] + fy * box["h"]})
    hint_cell = page.locator("#colorize-hints [role=gridcell]", has_text="#")
    hint_cell.first.wait_for(state="visible")
    row = page.locator("#colorize-hints [role=row]:has([role=gridcell])").first
    x, y, colour = row.locator("[role=gridcell]").all_inner_texts()[:3]
    h, w = photo.shape[:2]
    assert abs(float(x) - fx * w) < 0.03 * w and abs(float(y) - fy * h) < 0.03 * h, (x, y)
    assert colour.strip().startswith("#")
    page.locator("#colorize-hint-view img").first.wait_for(state="visible")

    page.locator("#colorize-button").click()
    out = _fetch_image(page, "#colorize-output")

    assert out.shape == photo.shape
    lab_in, lab_out = _lab(photo), _lab(out)
    # The colorizer keeps the photo's lightness and paints its own a*, b*: a new colour photo, not a copy
    # of the upload and not a gray one.
    assert np.median(np.abs(lab_out[..., 0] - lab_in[..., 0])) < 2.0
    chroma_out = np.hypot(lab_out[..., 1], lab_out[..., 2])
    assert chroma_out.mean() > 3.0, "the result is (nearly) gray"
    assert np.abs(lab_out[..., 1:] - lab_in[..., 1:]).mean() > 1.0, "the result equals the upload"

    panel = _fetch_image(page, "#colorize-panel")
    assert panel.shape[1] > 2 * panel.shape[0], (
        "the panel shows lightness, colorized and original side by side"
    )
    names = "".join(page.locator("#colorize-files").inner_text().split())
    assert "chelsea_color.png" in names and "chelsea_panel.png" in names

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("TINCT_DEMO_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_white_balance_in_browser(page: Any, tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    light = np.array([0.55, 1.0, 0.45])  # a warm light in camera RGB (green the largest, as in cameras)
    # A Mondrian of 12 x 16 flat patches with reflectances drawn uniformly: gray world recovers the light.
    reflectance = rng.uniform(0.05, 0.9, size=(12, 16, 3))
    scene = np.kron(reflectance, np.ones((16, 16, 1))) * light * 0.8
    path = tmp_path / "mondrian_linear.png"
    assert cv2.imwrite(str(path), np.rint(scene[..., ::-1] * 65535).astype(np.uint16))

    page.get_by_role("tab", name="White balance").click()
    page.locator("#wb-input input[type=file]").set_input_files(str(path))
    table = page.locator("#wb-table")
    # Gradio's table is a grid of role="row" / role="gridcell" elements (no <tr>, <td>).
    table.locator("[role=gridcell]", has_text="learned").first.wait_for(state="visible")
    rows = table.locator("[role=row]:has([role=gridcell])")
    assert rows.count() >= 3, "the learned estimate and at least two classical ones"
    balanced = _fetch_image(page, "#wb-balanced")
    k = balanced.shape[0] // scene.shape[0]  # small files are shown enlarged by a whole factor
    assert k >= 1 and balanced.shape[:2] == (k * scene.shape[0], k * scene.shape[1])

    page.screenshot(path=str(tmp_path / "white_balance.png"), full_page=True)
    text = table.inner_text().lower()
    assert "gray world" in text or "grey world" in text
    gray_world = next(rows.nth(i) for i in range(rows.count()) if "world" in rows.nth(i).inner_text().lower())
    cells = gray_world.locator("[role=gridcell]").all_inner_texts()
    rgb = np.array([float(c) for c in cells[1:4]])
    cos = rgb @ light / np.linalg.norm(rgb) / np.linalg.norm(light)
    assert np.degrees(np.arccos(min(cos, 1.0))) < 3.0, f"gray world {rgb} is not the light {light}"
