"""``tinct colorize`` on whole photos (issue 16): unique output names, a table that survives a kill, strips
in bounded memory equal to the whole-photo result, temperature checks, the reader's notes, Ctrl-C."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.cli.main import main
from tinct.colorization.colorize import (
    ColorizeInterrupted,
    colorize,
    colorize_file,
    load_colorizer,
)
from tinct.colorization.networks import ColorizationNet, Colorizer, upsample_rows
from tinct.core.exceptions import ConfigError
from tinct.core.naming import unique_output_names


@pytest.fixture(scope="module")
def shipped() -> Colorizer:
    return load_colorizer()[0]


def _photo(path: Path, size: tuple[int, int] = (56, 40), seed: int = 0) -> Path:
    """A smooth random colour photo of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = (np.random.default_rng(seed).random((5, 6, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(path), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return path


def _table(out: Path) -> list[dict[str, str]]:
    with (out / "colorize.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# -- output names ---------------------------------------------------------------------------------------


def test_unique_output_names_scheme() -> None:
    def names(paths, roots=None):
        return [str(n) for n in unique_output_names([Path(p) for p in paths], roots)]

    paths = ["A/x.jpg", "B/x.jpg", "good.jpg", "good.PNG", "a.JPG", "a.jpg", "b.png"]
    assert names(paths) == ["x_jpg", "x_jpg-2", "good_jpg", "good_png", "a_jpg", "a_jpg-2", "b"]
    # Only photos going to the same folder compete; folders and stems compare without case.
    roots = [None, Path("/r"), Path("/R")]
    assert names(["/r/x.jpg", "/r/s/x.jpg", "/R/S/X.png"], roots) == ["x", "s/x_jpg", "S/X_png"]
    # A name another photo has by itself is never handed out as a "-2" name.
    assert names(["a.jpg", "a.JPG", "a_jpg-2.png"]) == ["a_jpg", "a_jpg-3", "a_jpg-2"]
    assert names(["a.jpg", "a.JPG", "a_jpg.png"]) == ["a_jpg-2", "a_jpg-3", "a_jpg"]


def test_same_stem_or_name_gives_one_output_each(shipped: Colorizer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", lambda *a, **k: (shipped, {}))
    inputs = [_photo(tmp_path / f"good.{ext}", seed=i) for i, ext in enumerate(("jpg", "png", "bmp"))]
    inputs += [_photo(tmp_path / "A" / "x.jpg", seed=5), _photo(tmp_path / "B" / "x.jpg", seed=6)]
    out = tmp_path / "out"
    rows = colorize(inputs, out, progress=False)
    names = sorted(p.name for p in out.glob("*_color.png"))
    assert names == ["good_bmp_color.png", "good_jpg_color.png", "good_png_color.png", "x_jpg-2_color.png",
                     "x_jpg_color.png"]  # fmt: skip
    assert len(list(out.glob("*_panel.png"))) == 5
    table = _table(out)
    assert [r["image"] for r in table] == [str(p) for p in inputs]
    assert [r["output"] for r in table] == [r["output"] for r in rows]
    assert sorted(Path(r["output"]).name for r in table) == names
    assert Path(table[3]["output"]).name == "x_jpg_color.png"  # input order decides who gets "-2"

    # Folders given as arguments keep their sub-folders; only equal stems in one folder are renamed.
    folder = tmp_path / "folder"
    for rel in ("x.jpg", "sub/x.jpg", "y.jpg", "y.png"):
        _photo(folder / rel)
    colorize([folder], tmp_path / "out2", progress=False)
    assert sorted(
        p.relative_to(tmp_path / "out2").as_posix() for p in (tmp_path / "out2").rglob("*_color.png")
    ) == [
        "sub/x_color.png",
        "x_color.png",
        "y_jpg_color.png",
        "y_png_color.png",
    ]


# -- strips in bounded memory -----------------------------------------------------------------------------


def test_upsample_rows_equals_interpolate() -> None:
    x = torch.rand(1, 2, 9, 13, generator=torch.Generator().manual_seed(0))
    for size in ((37, 50), (9, 13), (5, 40), (1, 1)):
        whole = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        joined = torch.cat([upsample_rows(x, size, r, min(size[0], r + 3)) for r in range(0, size[0], 3)], -2)
        assert torch.allclose(joined, whole, atol=1e-5), size


@pytest.mark.parametrize("size", [(500, 300), (560, 420)])  # the second one's panel is shrunk to 384 high
def test_strips_equal_the_whole_photo(shipped: Colorizer, tmp_path: Path, size: tuple[int, int]) -> None:
    from tinct.color.lab import rgb_to_lab
    from tinct.colorization.metrics import grayscale_from_lab

    path = _photo(tmp_path / "p.png", size, seed=3)
    row = colorize_file(shipped, path, tmp_path / "out", tile_rows=7)
    new = cv2.imread(row["output"])[..., ::-1].astype(int)
    # What colorize did before: the whole photo at once in float (Colorizer.forward), rounded on writing.
    rgb = torch.from_numpy(cv2.imread(str(path))[..., ::-1].transpose(2, 0, 1).copy()).float() / 255
    pred, lab = shipped(rgb[None])
    whole = np.round(pred[0].double().numpy().transpose(1, 2, 0) * 255).astype(int)
    assert new.shape == whole.shape and np.abs(new - whole).max() <= 1
    assert torch.equal(rgb_to_lab(rgb[None])[:, 0], lab[:, 0])  # the output's L is the photo's own

    parts = [grayscale_from_lab(lab)[0], pred[0], rgb]
    h, w = size[1], size[0]
    if h > 384:
        parts = [F.interpolate(p[None], size=(384, round(w * 384 / h)), mode="bilinear", antialias=True)[0]
                 for p in parts]  # fmt: skip
    gap = torch.ones(3, parts[0].shape[-2], 4)
    expected = torch.cat([parts[0], gap, parts[1], gap, parts[2]], -1).clamp(0, 1)
    expected = np.round(expected.double().numpy().transpose(1, 2, 0) * 255).astype(int)
    panel = cv2.imread(row["panel"])[..., ::-1].astype(int)
    assert panel.shape == expected.shape and np.abs(panel - expected).max() <= 1


MEMORY_SCRIPT = """
import resource, sys
import cv2, numpy as np
from pathlib import Path
from tinct.colorization.colorize import colorize
folder = Path(sys.argv[1])
rng = np.random.default_rng(0)
small = (rng.random((8, 10, 3)) * 255).astype(np.uint8)
cv2.imwrite(str(folder / "warm.jpg"), cv2.resize(small, (400, 300), interpolation=cv2.INTER_CUBIC))
big = cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_CUBIC)
cv2.imwrite(str(folder / "big.jpg"), big)
del big
colorize([folder / "warm.jpg"], folder / "out", progress=False)  # every module imported, the model loaded
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = colorize([folder / "big.jpg"], folder / "out", progress=False)
assert "error" not in rows[0], rows
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB is Linux's")
def test_a_12_megapixel_photo_in_bounded_memory(tmp_path: Path) -> None:
    # 12 MP: 36 MB as 8 bits; the whole photo in float, as before, peaked 1.2 GB above the start (now 0.13).
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    growth_mb = float(result.stdout.strip().splitlines()[-1])
    assert growth_mb < 600, f"peak memory grew by {growth_mb:.0f} MB"


# -- colorize.csv as the job goes ------------------------------------------------------------------------

KILL_SCRIPT = """
import sys
from tinct.colorization.colorize import colorize
colorize([sys.argv[1]], sys.argv[2], progress=False)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_job_keeps_the_table_of_finished_photos(tmp_path: Path) -> None:
    for i in range(12):
        _photo(tmp_path / "in" / f"p{i:02d}.jpg", (1200, 900), seed=i)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "in"), str(out)])
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("*_color.png"))) < 2:  # the second photo started: the first one is done
            assert proc.poll() is None, "colorize ended before it could be killed"
            assert time.monotonic() < deadline, "no outputs after 60 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    listed = {Path(r["output"]).name for r in _table(out)}
    written = {p.name for p in out.glob("*_color.png")}
    assert listed and listed <= written and len(written - listed) <= 1  # at most the photo in flight


def test_rerun_starts_a_new_table(shipped: Colorizer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", lambda *a, **k: (shipped, {}))
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.png")
    colorize([a, b], tmp_path / "out", progress=False)
    colorize([b], tmp_path / "out", progress=False)
    assert [r["image"] for r in _table(tmp_path / "out")] == [str(b)]


def test_ctrl_c_leaves_table_and_outputs_consistent(
    shipped: Colorizer, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tinct.io.image

    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", lambda *a, **k: (shipped, {}))
    photos = [_photo(tmp_path / "in" / f"p{i}.png", seed=i) for i in range(3)]
    write_image = tinct.io.image.write_image
    calls = []

    def interrupted_on_second_panel(*args, **kwargs):
        calls.append(args[0])
        if Path(args[0]).name == "p1_panel.png":  # the second photo's colour image is written by now
            raise KeyboardInterrupt
        return write_image(*args, **kwargs)

    monkeypatch.setattr(tinct.io.image, "write_image", interrupted_on_second_panel)
    with pytest.raises(KeyboardInterrupt) as info:  # a ColorizeInterrupted is a KeyboardInterrupt
        colorize([tmp_path / "in"], tmp_path / "out", progress=False)
    assert isinstance(info.value, ColorizeInterrupted) and (info.value.done, info.value.total) == (1, 3)
    # The photo in flight (its colour image written, its panel not) left nothing behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "colorize.csv",
        "p0_color.png",
        "p0_panel.png",
    ]
    assert [r["image"] for r in _table(tmp_path / "out")] == [str(photos[0])]

    calls.clear()
    assert main(["colorize", str(tmp_path / "in"), "--out", str(tmp_path / "out2")]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; 1 of 3 photos colorized, listed in {tmp_path / 'out2' / 'colorize.csv'}" in err
    assert "--resume" not in err


# -- temperature, notes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5])
def test_bad_temperature_is_a_clear_error(bad: float, tmp_path: Path) -> None:
    net = ColorizationNet(width=0.125)
    with pytest.raises(ConfigError, match=f"temperature must be a finite number >= 0.*got {bad}"):
        Colorizer(net, bad)
    with pytest.raises(ConfigError, match="temperature"):
        Colorizer(net).decode(torch.zeros(1, 313, 2, 2), bad)
    with pytest.raises(ConfigError, match=str(bad)):
        load_colorizer(None, bad)


def test_temperature_zero_is_the_mode(shipped: Colorizer, tmp_path: Path) -> None:
    from tinct.color.quantize import decode_mode

    logits = torch.randn(1, 313, 3, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(shipped.decode(logits, 0.0), decode_mode(logits))
    colorizer, _ = load_colorizer(None, 0)
    assert colorizer.temperature == 0.0
    row = colorize_file(colorizer, _photo(tmp_path / "p.png"), tmp_path / "out")
    assert Path(row["output"]).is_file()


def test_exif_rotation_is_noted(shipped: Colorizer, tmp_path: Path, monkeypatch, capsys) -> None:
    from PIL import Image

    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", lambda *a, **k: (shipped, {}))
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.open(_photo(tmp_path / "p.png", (60, 40))).save(path, exif=exif)
    rows = colorize([path], tmp_path / "out", progress=False)
    assert "EXIF orientation 6" in rows[0]["note"]
    assert "EXIF orientation 6" in _table(tmp_path / "out")[0]["note"]
    assert f"{path}: " in capsys.readouterr().err
    assert cv2.imread(rows[0]["output"]).shape == (60, 40, 3)  # upright: 40 wide, 60 high
