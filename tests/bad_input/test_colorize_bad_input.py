"""Bad-input matrix, ``tinct colorize`` and ``tinct evaluate colorization`` (issue 16): photos above the
pixel limit, truncated files and bad temperatures are reported by name, in one line, and a batch goes on."""

from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinct.cli.main import main
from tinct.colorization.colorize import colorize, evaluate_colorization, load_colorizer


@pytest.fixture(autouse=True)
def _shipped_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = load_colorizer()
    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", lambda *a, **k: shipped)
    monkeypatch.delenv("TINCT_MAX_PIXELS", raising=False)


def _photo(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A smooth random colour photo of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = (np.random.default_rng(seed).random((5, 6, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(path), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return path


def _table(out: Path) -> dict[str, dict[str, str]]:
    with (out / "colorize.csv").open(newline="") as f:
        return {Path(r["image"]).name: r for r in csv.DictReader(f)}


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` pixels and holds none (what a decompression bomb looks like
    before it is decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_photo_above_max_pixels_is_skipped_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = _photo(tmp_path / "big.png", (100, 100))  # 10000 pixels
    small = _photo(tmp_path / "small.png", (50, 40), seed=1)
    rows = colorize([big, small], tmp_path / "out", max_pixels=5000, progress=False)
    assert [("error" in r) for r in rows] == [True, False]
    table = _table(tmp_path / "out")
    assert str(big) in table["big.png"]["error"] and "5,000" in table["big.png"]["error"]
    assert table["big.png"]["output"] == "" and Path(table["small.png"]["output"]).is_file()
    assert f"skipped {big}" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("big*"))

    # The command: the same through --max-pixels; every photo is tried, and a skipped one makes the exit
    # status 1 at the end (as tinct predict), 0 only when all were colorized.
    assert (
        main(["colorize", str(big), str(small), "--out", str(tmp_path / "o2"), "--max-pixels", "5000"]) == 1
    )
    assert main(["colorize", str(small), "--out", str(tmp_path / "o5"), "--max-pixels", "5000"]) == 0
    assert main(["colorize", str(big), "--out", str(tmp_path / "o3"), "--max-pixels", "5000"]) == 1
    assert str(big) in capsys.readouterr().err
    assert main(["colorize", str(small), "--out", str(tmp_path / "o4"), "--max-pixels", "0"]) == 2
    assert "--max-pixels" in capsys.readouterr().err.strip().splitlines()[-1]


def test_default_limit_refuses_a_bomb_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)  # 400 MP: 1.2 GB as 8 bits
    good = _photo(tmp_path / "good.png", (50, 40))
    assert main(["colorize", str(bomb), str(good), "--out", str(tmp_path / "out")]) == 1  # one skipped
    table = _table(tmp_path / "out")
    assert "exceeds the limit" in table["bomb.png"]["error"] and str(bomb) in table["bomb.png"]["error"]
    assert Path(table["good.png"]["output"]).is_file()
    assert "Traceback" not in capsys.readouterr().err
    # The reader's default comes from TINCT_MAX_PIXELS.
    monkeypatch.setenv("TINCT_MAX_PIXELS", "1000")
    rows = colorize([good], tmp_path / "out2", progress=False)
    assert "1,000" in rows[0]["error"]


def test_truncated_jpeg_is_skipped_and_the_batch_goes_on(tmp_path: Path) -> None:
    whole = _photo(tmp_path / "whole.jpg", (300, 200))
    data = whole.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    good = _photo(tmp_path / "good.jpg", (60, 40), seed=2)
    rows = colorize([cut, good], tmp_path / "out", progress=False)
    assert "error" in rows[0] and "error" not in rows[1]
    table = _table(tmp_path / "out")
    assert str(cut) in table["cut.jpg"]["error"] and "truncated" in table["cut.jpg"]["error"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["good_color.png", "good_panel.png"]


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_bad_temperature_is_one_line(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.undo()  # the real load_colorizer: it checks the temperature
    photo = _photo(tmp_path / "p.png", (50, 40))
    for argv in (
        ["colorize", str(photo), "--out", str(tmp_path / "out"), "--temperature", value],
        [
            "evaluate",
            "colorization",
            "--data",
            str(tmp_path),
            "--temperature",
            value,
            "--out",
            str(tmp_path / "m.json"),
        ],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "temperature must be a finite number >= 0" in err[0] and value in err[0], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.json").exists()


def test_evaluate_skips_photos_above_max_pixels(tmp_path: Path) -> None:
    big = _photo(tmp_path / "big.png", (100, 100))
    small = _photo(tmp_path / "small.png", (50, 40), seed=1)
    with pytest.warns(UserWarning, match="skipped"):
        metrics = evaluate_colorization(None, [big, small], None, progress=False, max_pixels=5000)
    assert metrics["skipped"] == [str(big)] and metrics["n_images"] == 1


def test_extreme_shapes_keep_the_network_input_small(tmp_path: Path) -> None:
    from tinct.colorization.networks import ColorizationNet, Colorizer

    colorizer = Colorizer(ColorizationNet(width=0.125))
    assert colorizer.network_size(3000, 4000) == (256, 341)  # ordinary photos: short side 256, as before
    assert colorizer.network_size(4000, 500) == (2048, 256)  # 8:1
    # A 1 x 5000 line was seen at 256 x 1280000 (the machine ran out of memory); now its long side is 2048.
    assert colorizer.network_size(1, 5000) == (8, 2048)
    assert colorizer.network_size(5000, 2) == (2048, 8)
    photos = [_photo(tmp_path / "dot.png", (1, 1)), _photo(tmp_path / "line.png", (900, 1), seed=1)]
    rows = colorize(photos, tmp_path / "out", progress=False)
    assert [cv2.imread(r["output"]).shape for r in rows] == [(1, 1, 3), (1, 900, 3)]


def test_missing_input_is_skipped_named_and_fails_the_job_like_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 16, item 12: colorize and predict treat a missing input alike: skip it, name it, go on with
    # the others, exit 1 at the end (it used to be left out of colorize.csv, with exit status 0).
    good = _photo(tmp_path / "good.png", (40, 30))
    missing = tmp_path / "nonexist.png"
    assert main(["colorize", str(missing), str(good), "--out", str(tmp_path / "out")]) == 1
    assert f"skipped {missing}: no such photo folder or file" in capsys.readouterr().err
    table = _table(tmp_path / "out")
    assert "no such photo folder or file" in table["nonexist.png"]["error"]
    assert Path(table["good.png"]["output"]).is_file()
