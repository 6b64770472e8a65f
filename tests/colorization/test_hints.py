"""User colour hints (``tinct colorize --hints FILE.json``): the file's forms, colour conversion against
colour-science, rasterization onto the network's grid, every bad input as a named DataError, the maps the
network receives, ECCV16 refusing hints, and the command end to end."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import colour
import cv2
import numpy as np
import pytest
import torch
from torch import Tensor, nn

import tinct.colorization.siggraph  # noqa: F401  (registers "siggraph17"; loading a .pt needs it)
from tinct.cli.main import main
from tinct.colorization.colorize import colorize, colorize_file
from tinct.colorization.hints import HintFile, Hints, load_hints
from tinct.colorization.networks import ColorizationNet, Colorizer
from tinct.colorization.pretrained import ECCV16_COLORIZER
from tinct.colorization.siggraph import SIGGRAPHNet
from tinct.core.exceptions import ConfigError, DataError


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _photo(path: Path, size: tuple[int, int] = (56, 40), seed: int = 0) -> Path:
    """A smooth random colour photo of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = (np.random.default_rng(seed).random((5, 6, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(path), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return path


def _reference_ab(rgb8: list[float]) -> np.ndarray:
    """a*, b* of an 8-bit sRGB colour by colour-science 0.4.7 (D65), independent of tinct's conversion."""
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(rgb8, dtype=np.float64) / 255.0))[1:]


class _Spy(nn.Module):
    """A SIGGRAPH17 net that records each input it is given."""

    hint_channels = 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = SIGGRAPHNet(width=0.125).eval()
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Any:
        self.inputs.append(x.clone())
        out = self.net(x)
        self.outputs.append(out.ab.clone())
        return out


# -- the file's forms -----------------------------------------------------------------------------------


def test_every_point_form(tmp_path: Path) -> None:
    points = [
        {"x": 120, "y": 80, "ab": [20, -35]},
        {"x": 1.5, "y": 2.25, "rgb": [255, 120, 0], "radius": 3},
        {"x": 0, "y": 0, "hex": "#ff7800"},
        {"x": 5, "y": 6, "hex": "FF7800", "radius": 0},
        {"x": 7, "y": 8, "hex": "#f70", "radius": 2.0},
    ]
    for data in (points, {"points": points}):
        hints = load_hints(_write(tmp_path / "h.json", data)).for_photo("any.jpg")
        assert hints is not None and len(hints) == 5
        assert hints.points.tolist() == [[120, 80], [1.5, 2.25], [0, 0], [5, 6], [7, 8]]
        assert hints.radius.tolist() == [1, 3, 1, 0, 2]
        assert hints.ab[0].tolist() == [20.0, -35.0]
        # rgb, hex, upper-case hex without '#' are the same colour; #f70 is #ff7700
        assert torch.equal(hints.ab[1], hints.ab[2]) and torch.equal(hints.ab[2], hints.ab[3])
        np.testing.assert_allclose(hints.ab[4].numpy(), _reference_ab([255, 119, 0]), atol=1e-3)
        assert hints.source == str(tmp_path / "h.json") and hints.key is None
    mapping = {"a.jpg": points[:1], "b": points[1:3], "sub/c.png": [], "unused.jpg": points}
    f = load_hints(_write(tmp_path / "m.json", mapping))
    assert f.points is None and set(f.photos) == set(mapping)
    assert len(f.for_photo("in/a.jpg")) == 1  # by name
    assert len(f.for_photo("in/b.tif")) == 2  # by stem
    assert len(f.for_photo("x/sub/c.png")) == 0  # by the last parts of its path: no hints, but named
    assert f.for_photo("other/c.png") is None and f.for_photo("a.png") is None
    assert f.photos["b"].key == "b"


@pytest.mark.parametrize(
    "rgb8",
    [[255, 120, 0], [0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [12.5, 200, 99]],
)
def test_rgb_and_hex_match_colour_science(rgb8: list[float]) -> None:
    hints = Hints.from_points([{"x": 0, "y": 0, "rgb": rgb8}])
    np.testing.assert_allclose(hints.ab[0].numpy(), _reference_ab(rgb8), atol=1e-3)
    if all(float(v).is_integer() for v in rgb8):
        hexed = Hints.from_points([{"x": 0, "y": 0, "hex": "#" + "".join(f"{int(v):02x}" for v in rgb8)}])
        np.testing.assert_allclose(hexed.ab[0].numpy(), _reference_ab(rgb8), atol=1e-3)


# -- rasterize --------------------------------------------------------------------------------------------


def _on(mask: Tensor) -> list[tuple[int, int]]:
    return [tuple(rc) for rc in torch.nonzero(mask[0, 0]).tolist()]


def test_rasterize_maps_corners_and_centres() -> None:
    # A 40 x 80 photo seen at 10 x 20: each network pixel covers 4 x 4 photo pixels.
    pts = [(0, 0), (79, 39), (41, 17), (3, 4), (4, 3)]
    hints = Hints.from_points([{"x": x, "y": y, "ab": [i, -i], "radius": 0} for i, (x, y) in enumerate(pts)])
    ab, mask = hints.rasterize((40, 80), (10, 20))
    assert ab.shape == (1, 2, 10, 20) and mask.shape == (1, 1, 10, 20)
    assert ab.dtype == mask.dtype == torch.float32
    expected = {(0, 0): 0, (9, 19): 1, (4, 10): 2, (1, 0): 3, (0, 1): 4}  # (row, col) -> point
    assert sorted(_on(mask)) == sorted(expected)
    for (r, c), i in expected.items():
        assert ab[0, :, r, c].tolist() == [i, -i]
    assert float(ab.abs().sum()) == sum(2 * i for i in range(5))  # zero outside the hints
    # A scale that is not a whole number: a 40 x 56 photo at the Colorizer's 32 x 45 (infer_size 32).
    assert Colorizer(SIGGRAPHNet(width=0.125), infer_size=32).network_size(40, 56) == (32, 45)
    pts = [(0, 0), (55, 39), (27.5, 19.5), (10, 30)]  # round((x + 0.5) * 45 / 56 - 0.5) ...
    hints = Hints.from_points([{"x": x, "y": y, "ab": [1, 1], "radius": 0} for x, y in pts])
    assert sorted(_on(hints.rasterize((40, 56), (32, 45))[1])) == sorted(
        [(0, 0), (31, 44), (16, 22), (24, 8)]
    )


def test_rasterize_patches_clip_and_later_points_win() -> None:
    hints = Hints.from_points(
        [
            {"x": 0, "y": 0, "ab": [10, 10]},  # default radius 1, clipped at the corner: 2 x 2
            {"x": 79, "y": 39, "ab": [20, 20], "radius": 2},  # 3 x 3 in the opposite corner
            {"x": 41, "y": 17, "ab": [30, 30]},  # 3 x 3 around (4, 10)
            {"x": 45, "y": 17, "ab": [-40, 40], "radius": 0},  # (4, 11): overwrites the previous patch
        ]
    )
    ab, mask = hints.rasterize((40, 80), (10, 20))
    expected = torch.zeros(10, 20)
    expected[:2, :2] = 1
    expected[7:, 17:] = 1
    expected[3:6, 9:12] = 1
    assert torch.equal(mask[0, 0], expected)
    assert torch.equal(ab[0, :, :2, :2], torch.full((2, 2, 2), 10.0))
    assert torch.equal(ab[0, :, 7:, 17:], torch.full((2, 3, 3), 20.0))
    assert ab[0, :, 4, 11].tolist() == [-40.0, 40.0] and ab[0, :, 4, 10].tolist() == [30.0, 30.0]
    everywhere = Hints.from_points([{"x": 5, "y": 5, "ab": [1, 2], "radius": 1000}])
    assert everywhere.rasterize((40, 80), (10, 20))[1].sum() == 200


def test_points_must_lie_inside_the_photo() -> None:
    hints = Hints.from_points([{"x": 79, "y": 39.0, "ab": [1, 1]}], "hints.json", "a.jpg")
    hints.rasterize((40, 80), (10, 20))  # the last pixel is inside
    for size in ((40, 79), (39, 80)):
        with pytest.raises(DataError, match=r"hints.json: point 0 of 'a.jpg' at x = 79, y = 39 is outside "
                           r"photos/a.jpg \(\d+ x \d+ pixels"):  # fmt: skip
            hints.rasterize(size, (10, 20), photo="photos/a.jpg")
    late = Hints.from_points([{"x": 1, "y": 1, "ab": [0, 0]}, {"x": 1, "y": 1.5, "ab": [0, 0]}], "h.json")
    with pytest.raises(DataError, match=r"h\.json: point 1 at x = 1, y = 1\.5 is outside the photo"):
        late.rasterize((2, 2), (8, 8))


# -- bad files --------------------------------------------------------------------------------------------


_P = {"x": 1, "y": 2}
BAD = {
    "empty": ("", "empty hint file"),
    "blank": ("  \n", "empty hint file"),
    "not json": ("[{x: 1}]", r"not valid JSON \(.* at line 1, column 3\)"),
    "truncated": ('[{"x": 1, "y": 2, "ab": [1, 2]}', "not valid JSON"),
    "number": ("42", "expected a list of points"),
    "empty list": ([], "no hints"),
    "empty object": ({}, "no hints"),
    "empty points": ({"points": []}, "no hints"),
    "not a list": ({"a.jpg": {"x": 1}}, "the hints of 'a.jpg' must be a list of points"),
    "not an object": ([[1, 2]], "point 0: expected an object"),
    "unknown key": (
        [{**_P, "ab": [0, 0], "colour": "red"}],
        r"point 0: unknown key\(s\) 'colour'; valid keys",
    ),
    "missing y": ([{"x": 1, "ab": [0, 0]}], "point 0: missing 'y'"),
    "no colour": ([_P], "point 0: give exactly one colour, 'ab', 'rgb' or 'hex' \\(got none\\)"),
    "two colours": ([{**_P, "ab": [0, 0], "hex": "#000"}], r"got 'ab' and 'hex'"),
    "NaN x": ('[{"x": NaN, "y": 2, "ab": [0, 0]}]', "point 0: x must be a finite number, got NaN"),
    "NaN ab": ('[{"x": 1, "y": 2, "ab": [0, NaN]}]', "point 0: ab must be two finite numbers"),
    "Infinity": ('[{"x": 1, "y": Infinity, "ab": [0, 0]}]', "y must be a finite number"),
    "string x": ([{"x": "1", "y": 2, "ab": [0, 0]}], 'x must be a finite number, got "1"'),
    "bool y": ([{"x": 1, "y": True, "ab": [0, 0]}], "y must be a finite number, got true"),
    "negative x": ([{"x": -1, "y": 2, "ab": [0, 0]}], "point 0: x = -1 is outside the photo"),
    "ab range": ([{**_P, "ab": [0, 0]}, {**_P, "ab": [111, 0]}], r"point 1: ab must be .* \[-110, 110\]"),
    "ab length": ([{**_P, "ab": [1, 2, 3]}], "ab must be two finite numbers"),
    "rgb range": ([{**_P, "rgb": [0, 256, 0]}], r"rgb must be three numbers in \[0, 255\]"),
    "rgb negative": ([{**_P, "rgb": [-1, 0, 0]}], "rgb must be three numbers"),
    "rgb length": ([{**_P, "rgb": [0, 0]}], "rgb must be three numbers"),
    "bad hex": ([{**_P, "hex": "#ff780"}], 'hex must be a colour like "#ff7800"'),
    "hex letters": ([{**_P, "hex": "#gg7800"}], "hex must be a colour"),
    "hex number": ([{**_P, "hex": 16742400}], "hex must be a colour"),
    "negative radius": ([{**_P, "ab": [0, 0], "radius": -1}], "radius must be a whole number >= 0"),
    "fractional radius": ([{**_P, "ab": [0, 0], "radius": 1.5}], "radius must be a whole number"),
    "mapped point": ({"a.jpg": [_P]}, "point 0 of 'a.jpg': give exactly one colour"),
    "repeated key": ('[{"x": 1, "x": 2, "y": 2, "ab": [0, 0]}]', r"key\(s\) 'x' given twice"),
    "repeated photo": ('{"a.jpg": [], "a.jpg": []}', r"key\(s\) 'a.jpg' given twice"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_hint_file_is_a_named_data_error(case: str, tmp_path: Path) -> None:
    content, message = BAD[case]
    path = _write(tmp_path / "my hints.json", content)
    with pytest.raises(DataError, match=message) as info:
        load_hints(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_missing_or_unreadable_hint_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope.json'}: hint file not found")):
        load_hints(tmp_path / "nope.json")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: not a file")):
        load_hints(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'[{"x": 1, "y": 2, "hex": "\xff"}]')
    with pytest.raises(DataError, match=r"latin1\.json: cannot read the hint file"):
        load_hints(tmp_path / "latin1.json")


def test_photos_are_matched_once(tmp_path: Path) -> None:
    point = [{"x": 0, "y": 0, "ab": [0, 0]}]
    photos = [Path("in/A/x.jpg"), Path("in/B/x.jpg"), Path("in/y.png")]
    f = HintFile.from_json({"A/x.jpg": point, "B/x": point * 2, "z.jpg": point}, "h.json")
    assigned, unused = f.assign(photos)
    assert [None if h is None else len(h) for h in assigned] == [1, 2, None] and unused == ["z.jpg"]
    with pytest.raises(DataError, match=r"h.json: key 'x.jpg' names 2 photos \(in/A/x.jpg, in/B/x.jpg\)"):
        HintFile.from_json({"x.jpg": point}, "h.json").assign(photos)
    with pytest.raises(DataError, match=r"h.json: keys 'y', 'y.png' all name in/y.png"):
        HintFile.from_json({"y": point, "y.png": point}, "h.json").assign(photos)
    single = HintFile.from_json(point, "h.json")
    assert single.assign(photos[:1]) == ([single.points], [])
    with pytest.raises(
        DataError, match=r"h\.json: one list of points, for one photo, but 3 photos were given"
    ):
        single.assign(photos)


# -- what the network receives ---------------------------------------------------------------------------


def test_the_network_receives_the_rasterized_hints(tmp_path: Path) -> None:
    from PIL import Image

    spy = _Spy()
    colorizer = Colorizer(spy, infer_size=32).eval()
    # Stored 56 wide x 40 high, shown rotated (EXIF 6): upright it is 40 wide x 56 high, the frame of x, y.
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(_photo(tmp_path / "p.png", (56, 40))).save(path, exif=exif)
    hints = Hints.from_points(
        [{"x": 39, "y": 55, "hex": "#ff7800", "radius": 2}, {"x": 10, "y": 3, "ab": [-50, 60], "radius": 0}],
        "h.json",
    )
    row = colorize_file(colorizer, path, tmp_path / "out", hints=hints)
    assert "EXIF orientation 6" in row["note"] and row["note"].endswith("; 2 hints")
    h, w = colorizer.network_size(56, 40)
    assert (h, w) == (45, 32)
    ab, mask = hints.rasterize((56, 40), (h, w))
    assert (
        mask[0, 0, -1, -1] == 1 and mask[0, 0, 2, 8] == 1
    )  # the upright corner; (3.5 * 45 / 56, 10.5 * 0.8)
    x = spy.inputs[-1]
    assert x.shape == (1, 4, 48, 32)  # padded to a multiple of 8
    torch.testing.assert_close(x[:, 1:3, :h, :w] * 110.0, ab * mask, rtol=0, atol=1e-5)
    assert torch.equal(x[:, 3:, :h, :w], mask - 0.5)
    assert bool((x[:, 1:3, h:] == 0).all()) and bool((x[:, 3, h:] == -0.5).all())  # no hints in the padding
    with_hints = spy.outputs[-1]
    colorize_file(colorizer, path, tmp_path / "out2")
    assert bool((spy.inputs[-1][:, 1:3] == 0).all()) and bool((spy.inputs[-1][:, 3] == -0.5).all())
    assert not torch.allclose(spy.outputs[-1], with_hints)
    # A point outside the upright photo (inside the stored one) names the photo and the hint file.
    outside = Hints.from_points([{"x": 50, "y": 5, "ab": [0, 0]}], "h.json")
    with pytest.raises(
        DataError, match=re.escape(f"h.json: point 0 at x = 50, y = 5 is outside {path} (40 x 56")
    ):
        colorize_file(colorizer, path, tmp_path / "out3", hints=outside)
    assert not (tmp_path / "out3").exists()


def test_eccv16_refuses_hints_before_any_photo(tmp_path: Path, monkeypatch) -> None:
    eccv = Colorizer(ColorizationNet(width=0.125), infer_size=32).eval()
    hints = Hints.from_points([{"x": 1, "y": 1, "ab": [0, 0]}])
    photo = _photo(tmp_path / "in" / "a.png")
    with pytest.raises(ConfigError, match="this colorizer \\(ColorizationNet\\) takes no colour hints; use a "
                       "SIGGRAPH17 model"):  # fmt: skip
        colorize_file(eccv, photo, tmp_path / "out", hints=hints)
    monkeypatch.setattr(
        "tinct.colorization.colorize.load_colorizer", lambda *a, **k: (eccv, {"source": "runs/eccv"})
    )
    with pytest.raises(ConfigError, match="model runs/eccv \\(ColorizationNet\\) takes no colour hints"):
        colorize(
            [photo], tmp_path / "out", hints=_write(tmp_path / "h.json", [{"x": 1, "y": 1, "ab": [0, 0]}])
        )
    assert not (tmp_path / "out").exists()


# -- the command ----------------------------------------------------------------------------------------


def _siggraph_file(path: Path) -> Path:
    """A tiny randomly initialised SIGGRAPH17 colorizer in the format ``load_colorizer_file`` reads."""
    from tinct.colorization.pretrained import FORMAT

    torch.manual_seed(0)
    net = SIGGRAPHNet(width=0.125)
    config = {
        "task": "colorization",
        "model": {"arch": "siggraph17", "width": 0.125, "head": "regression", "infer_size": 32},
        "data": {"l_cent": 50.0, "l_norm": 100.0},
    }
    torch.save({"format": FORMAT, "config": config, "state_dict": net.state_dict()}, path)
    return path


def test_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _siggraph_file(tmp_path / "sig.pt")
    photos = [_photo(tmp_path / "in" / f"{name}.png", seed=i) for i, name in enumerate(("a", "b", "c"))]
    hints = _write(
        tmp_path / "hints.json",
        {
            "a.png": [{"x": 10, "y": 20, "ab": [40, 40]}],
            "b": [{"x": 0, "y": 0, "rgb": [0, 0, 255]}, {"x": 55, "y": 39, "hex": "#0f0"}],
            "ghost.jpg": [{"x": 1, "y": 1, "ab": [0, 0]}],
        },
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "in"),
                "--out",
                str(out),
                "--model",
                str(model),
                "--hints",
                str(hints),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"{hints}: 'ghost.jpg' names none of the photos; its hints are unused" in err
    with (out / "colorize.csv").open(newline="") as f:
        notes = {Path(r["image"]).name: r["note"] for r in csv.DictReader(f)}
    assert notes == {"a.png": "1 hint", "b.png": "2 hints", "c.png": ""}
    assert sorted(p.name for p in out.glob("*_color.png")) == ["a_color.png", "b_color.png", "c_color.png"]
    # A point outside one photo skips that photo (by name) and fails the job at the end; the rest are done.
    _write(hints, {"a.png": [{"x": 56, "y": 0, "ab": [0, 0]}]})
    assert main(["colorize", *map(str, photos), "--out", str(tmp_path / "o2"), "--model", str(model),
                 "--hints", str(hints)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert f"tinct: skipped {hints}: point 0 of 'a.png' at x = 56, y = 0 is outside {photos[0]}" in err
    assert len(list((tmp_path / "o2").glob("*_color.png"))) == 2
    # A bad file or a model without hint channels: one line, exit 2, nothing colorized.
    _write(hints, [{"x": 1, "y": 1, "ab": [0, 500]}])
    assert main(["colorize", str(photos[0]), "--out", str(tmp_path / "o3"), "--model", str(model),
                 "--hints", str(hints)]) == 2  # fmt: skip
    assert f"tinct colorize: error: {hints}: point 0: ab must be" in capsys.readouterr().err
    _write(hints, [{"x": 1, "y": 1, "ab": [0, 50]}])
    eccv16 = str(ECCV16_COLORIZER.path())
    assert main(["colorize", str(photos[0]), "--out", str(tmp_path / "o4"), "--model", eccv16,
                 "--hints", str(hints)]) == 2  # fmt: skip
    assert "(ColorizationNet) takes no colour hints; use a SIGGRAPH17 model" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()
