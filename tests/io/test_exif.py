"""Camera metadata: EXIF round trips, APEX fallbacks, unit rules, unknown markers, JSON side files, errors."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from tinct.core.exceptions import DataError
from tinct.io.exif import (
    PhotoMeta,
    exif_bytes,
    exposure_offset,
    normalize_meta,
    photo_meta,
    read_exif_meta,
    read_json_meta,
)

META = PhotoMeta(exposure_time=1 / 60, iso=400, f_number=2.8, brightness=-1.25)


def _jpeg(path: Path, exif: bytes | None = None) -> Path:
    kwargs = {"exif": exif} if exif is not None else {}
    Image.new("RGB", (40, 30), (180, 120, 100)).save(path, "JPEG", **kwargs)
    return path


def test_round_trip_jpeg(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "p.jpg", exif_bytes(META, make="Canon", model="Canon EOS R5"))
    meta = read_exif_meta(path)
    assert meta == PhotoMeta(1 / 60, 400.0, 2.8, -1.25, "Canon EOS R5")
    with Image.open(path) as im:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
    assert (sub[0x829A].numerator, sub[0x829A].denominator) == (1, 60)
    assert exif[0x0131] == "tinct"
    assert float(sub[0x9201]) == pytest.approx(math.log2(60), abs=1e-6)  # APEX Tv
    assert float(sub[0x9202]) == pytest.approx(2 * math.log2(2.8), abs=1e-6)  # APEX Av


def test_round_trip_extremes(tmp_path: Path) -> None:
    # ISO above 16 bits goes to ISOSpeed; Bv = -1 must not turn into the "unknown" marker -1/1
    meta = PhotoMeta(exposure_time=30.0, iso=102400, f_number=22.0, brightness=-1.0, camera="Phone X")
    got = read_exif_meta(_jpeg(tmp_path / "p.jpg", exif_bytes(meta)))
    assert got == PhotoMeta(30.0, 102400.0, 22.0, -1.0, "Phone X")
    empty = read_exif_meta(_jpeg(tmp_path / "e.jpg", exif_bytes(PhotoMeta())))
    assert empty == PhotoMeta(camera=None)
    with pytest.raises(ValueError, match="exposure_time"):
        exif_bytes(PhotoMeta(exposure_time=-1.0))


def test_camera_name_rules() -> None:
    assert normalize_meta({"Make": "Apple", "Model": "iPhone 12"}, "x").camera == "Apple iPhone 12"
    assert normalize_meta({"Make": "Canon", "Model": "Canon EOS R5"}, "x").camera == "Canon EOS R5"
    assert normalize_meta({"Make": "NIKON CORPORATION", "Model": "NIKON D750"}, "x").camera == "NIKON D750"
    assert normalize_meta({"Make": "Canon\x00 ", "Model": None}, "x").camera == "Canon"
    assert normalize_meta({"camera": "mine", "Make": "Canon"}, "x").camera == "mine"


def test_no_exif_is_all_none(tmp_path: Path) -> None:
    assert read_exif_meta(_jpeg(tmp_path / "p.jpg")) == PhotoMeta()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (6, 1 / 64),  # APEX Tv 6
        (IFDRational(6, 1), 1 / 64),
        ("0.5", 2**-0.5),
        ("1/60", 1 / 60),  # clearly seconds
        (IFDRational(1, 60), 1 / 60),
        ((1, 60), 1 / 60),
        ("-3", 8.0),  # APEX Tv -3: 8 s
    ],
)
def test_shutter_speed_value(value: object, expected: float) -> None:
    assert normalize_meta({"ShutterSpeedValue": value}, "x").exposure_time == pytest.approx(expected)


def test_apex_fallbacks_and_precedence(tmp_path: Path) -> None:
    meta = normalize_meta({"ApertureValue": 3, "ISOSpeedRatings": (200, 200)}, "x")
    assert meta.f_number == pytest.approx(2**1.5) and round(meta.f_number, 2) == 2.83
    assert meta.iso == 200.0
    both = normalize_meta(
        {"ExposureTime": "1/250", "ShutterSpeedValue": 6, "FNumber": 4, "ApertureValue": 3}, "x"
    )
    assert both.exposure_time == pytest.approx(1 / 250) and both.f_number == 4.0
    mine = normalize_meta(
        {"exposure_time": 0.5, "ExposureTime": "1/250", "iso": 100, "ISOSpeedRatings": 800}, "x"
    )
    assert (mine.exposure_time, mine.iso) == (0.5, 100.0)
    # a file with APEX values only (written by Pillow's own EXIF writer)
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9201], sub[0x9202], sub[0x8827] = IFDRational(6, 1), IFDRational(3, 1), 100
    got = read_exif_meta(_jpeg(tmp_path / "apex.jpg", exif.tobytes()))
    assert (
        got.exposure_time == pytest.approx(1 / 64)
        and got.f_number == pytest.approx(2**1.5)
        and got.iso == 100
    )


def test_iso_unknown_markers() -> None:
    assert normalize_meta({"ISOSpeedRatings": 0, "ISOSpeed": 640}, "x").iso == 640.0
    assert (
        normalize_meta({"PhotographicSensitivity": 65535, "RecommendedExposureIndex": 51200}, "x").iso
        == 51200
    )
    assert normalize_meta({"ISOSpeedRatings": 65535}, "x").iso is None
    assert normalize_meta({"EXIF:ISO": 320}, "x").iso == 320.0  # exiftool -G names


def test_ev100_reference_value() -> None:
    # hand value: EV100 = log2(N^2 / t) - log2(ISO / 100) = log2(2.8^2 * 60) - 2 for f/2.8, 1/60 s, ISO 400
    assert META.ev100 == pytest.approx(math.log2(2.8**2 * 60) - 2, abs=1e-12)
    assert PhotoMeta(exposure_time=1.0, iso=100.0, f_number=1.0).ev100 == 0.0
    assert PhotoMeta(exposure_time=1 / 60, f_number=2.8).ev100 is None
    d = META.as_dict()
    assert list(d) == ["exposure_time", "iso", "f_number", "brightness", "camera", "ev100"]
    assert d["ev100"] == META.ev100


def test_exposure_offset() -> None:
    metered = PhotoMeta(exposure_time=1 / 60, iso=400, f_number=2.8)
    bv = metered.ev100 - 5.0  # APEX: a correctly metered scene has Bv = EV100 - 5
    assert exposure_offset(PhotoMeta(1 / 60, 400, 2.8, bv)) == pytest.approx(0.0, abs=1e-12)
    assert exposure_offset(PhotoMeta(1 / 60, 400, 2.8, bv + 1.5)) == pytest.approx(1.5)  # brighter: over
    assert exposure_offset(metered) is None


def test_brightness_out_of_range_warns_and_unknown_is_silent() -> None:
    with pytest.warns(UserWarning, match=r"img7\.jpg.*BrightnessValue 512"):
        assert normalize_meta({"BrightnessValue": 512, "ExposureTime": 0.01}, "img7.jpg").brightness is None
    with pytest.warns(UserWarning, match="img8.jpg"):
        assert normalize_meta({"BrightnessValue": "-25.5"}, "img8.jpg").brightness is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalize_meta({"BrightnessValue": IFDRational(-1, 1)}, "x").brightness is None
        assert normalize_meta({"BrightnessValue": (0xFFFFFFFF, 1)}, "x").brightness is None
        assert normalize_meta({"BrightnessValue": 4294967295}, "x").brightness is None
        assert normalize_meta({"BrightnessValue": IFDRational(-100, 100)}, "x").brightness == -1.0
        assert normalize_meta({"brightness": 29.5}, "x").brightness == 29.5


def test_invalid_values_name_source_and_field() -> None:
    with pytest.raises(DataError, match=r"a\.jpg: ExposureTime.*-0\.5"):
        normalize_meta({"ExposureTime": -0.5}, "a.jpg")
    with pytest.raises(DataError, match=r"a\.jpg: FNumber"):
        normalize_meta({"FNumber": 0}, "a.jpg")
    with pytest.raises(DataError, match=r"a\.jpg: iso"):
        normalize_meta({"iso": float("inf")}, "a.jpg")
    with pytest.raises(DataError, match=r"a\.jpg: ExposureTime must be a number, got 'fast'"):
        normalize_meta({"ExposureTime": "fast"}, "a.jpg")
    # 0/0 is EXIF's "unknown", not an error
    assert normalize_meta({"FNumber": IFDRational(0, 0), "ExposureTime": (1, 0)}, "a.jpg") == PhotoMeta()


def test_json_meta_both_key_styles(tmp_path: Path) -> None:
    exif_style = {"ExposureTime": "1/60", "FNumber": 2.8, "ISOSpeedRatings": [400], "BrightnessValue": -1.25}
    (tmp_path / "a.json").write_text(json.dumps({**exif_style, "Make": "Canon", "Model": "EOS R5"}))
    (tmp_path / "b.json").write_text(json.dumps([{**exif_style, "Make": "Canon", "Model": "EOS R5"}]))
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "exposure_time": 1 / 60,
                "iso": 400,
                "f_number": 2.8,
                "brightness": -1.25,
                "camera": "Canon EOS R5",
            }
        )
    )
    expected = PhotoMeta(1 / 60, 400.0, 2.8, -1.25, "Canon EOS R5")
    for name in ("a", "b", "c"):
        assert read_json_meta(tmp_path / f"{name}.json") == expected


def test_photo_meta_prefers_json_beside_image(tmp_path: Path) -> None:
    image = _jpeg(tmp_path / "p.jpg", exif_bytes(META, model="Cam"))
    assert photo_meta(image).iso == 400.0
    (tmp_path / "p.json").write_text(json.dumps({"ISOSpeedRatings": 1600}))
    assert photo_meta(image) == PhotoMeta(iso=1600.0)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"broken\.jpg"):
        read_exif_meta(bad)
    with pytest.raises(DataError, match=r"missing\.jpg: no such file"):
        read_exif_meta(tmp_path / "missing.jpg")
    (tmp_path / "bad.json").write_text("{ExposureTime: 1/60")
    with pytest.raises(DataError, match=r"bad\.json: not a valid JSON"):
        read_json_meta(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError, match=r"list\.json: expected a JSON object"):
        read_json_meta(tmp_path / "list.json")
    (tmp_path / "neg.json").write_text('{"f_number": -2}')
    with pytest.raises(DataError, match=r"neg\.json: f_number"):
        read_json_meta(tmp_path / "neg.json")


def test_writer_tags_read_back_through_pillow_get_ifd(tmp_path: Path) -> None:
    meta = PhotoMeta(exposure_time=1 / 60, iso=102400, f_number=2.8, brightness=-1.0)
    path = _jpeg(tmp_path / "p.jpg", exif_bytes(meta, make="Canon", model="EOS R5", software="tinct 1"))
    with Image.open(path) as im:
        exif = im.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    Base = ExifTags.Base
    assert (exif[Base.Make], exif[Base.Model], exif[Base.Software]) == ("Canon", "EOS R5", "tinct 1")
    assert sub[Base.ExifVersion] == b"0232"
    assert (sub[Base.ExposureTime].numerator, sub[Base.ExposureTime].denominator) == (1, 60)
    assert (sub[Base.FNumber].numerator, sub[Base.FNumber].denominator) == (14, 5)
    assert float(sub[Base.ShutterSpeedValue]) == pytest.approx(math.log2(60), abs=1e-6)
    assert float(sub[Base.ApertureValue]) == pytest.approx(2 * math.log2(2.8), abs=1e-6)
    # ISO above 16 bits: 0x8827 holds 65535, the value is in ISOSpeed with SensitivityType 3
    assert (sub[Base.ISOSpeedRatings], sub[Base.SensitivityType], sub[Base.ISOSpeed]) == (65535, 3, 102400)
    # Bv -1 is stored as -2/2, not as the "unknown" marker -1/1
    bv = sub[Base.BrightnessValue]
    assert (bv.numerator, bv.denominator) == (-2, 2)
    assert set(sub) == {
        Base.ExifVersion,
        Base.ExposureTime,
        Base.FNumber,
        Base.ShutterSpeedValue,
        Base.ApertureValue,
        Base.ISOSpeedRatings,
        Base.SensitivityType,
        Base.ISOSpeed,
        Base.BrightnessValue,
    }
