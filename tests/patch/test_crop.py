"""Tests of tinct.patch.crop: locating a uniform target patch on a card in synthetic photos; cropping folders.

The photos come from a small renderer below that mimics the layout of the project's synthetic generator:
cluttered background, a white-framed grey card with a skin-coloured patch, soft shadow, spots, colour cast,
exposure, vignetting, lens blur, noise and a JPEG round trip. The true box is the patch rectangle it drew.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tinct.core.exceptions import DataError, ShapeError
from tinct.patch.crop import Box, contact_sheet, crop_folder, crop_with_context, locate_patch, locate_patches

# sRGB (IEC 61966-2-1) XYZ -> linear RGB matrix and the D65 white, for drawing skin colours given in CIELAB
_XYZ_TO_RGB = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ]
)
_D65 = np.array([0.95047, 1.0, 1.08883])

VARIANTS = ("plain", "adjacent_shadow", "spots", "dark", "bright", "cast", "near_frame", "noisy")


def _lab_to_linear_rgb(L: float, a: float, b: float) -> np.ndarray:
    fy = (L + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = _D65 * np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    return np.clip(_XYZ_TO_RGB @ xyz, 0.005, 1.0)


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _smooth_field(
    rng: np.random.Generator, h: int, w: int, cells: tuple[int, int], channels: int
) -> np.ndarray:
    grid = rng.uniform(0, 1, (*cells, channels)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels).astype(np.float64)


def render_photo(
    seed: int, variant: str = "plain", width: int = 160, height: int = 120, jpeg: bool = True
) -> tuple[np.ndarray, Box]:
    """A synthetic photo of a skin-coloured patch on a card: ``(H, W, 3)`` uint8 sRGB and the true patch box.

    ``variant``: ``plain``, ``adjacent_shadow`` (the shadow edge 4-6 px from the patch), ``spots`` (1-3
    specular or dust spots on the patch), ``dark`` / ``bright`` (exposure x0.25-0.4 / x1.6-2.3, partly
    clipping light patches), ``cast`` (strong colour cast), ``near_frame`` (the patch 1 px from the border),
    ``noisy`` (high-ISO noise, 25 times the variance, at half exposure).
    """
    rng = np.random.default_rng(seed)
    W, H = width, height
    img = 0.05 + 0.75 * _smooth_field(rng, H, W, (int(rng.integers(2, 6)), int(rng.integers(2, 6))), 3)

    def skin() -> np.ndarray:
        return _lab_to_linear_rgb(rng.uniform(30, 75), rng.uniform(5, 20), rng.uniform(10, 30))

    for _ in range(int(rng.integers(4, 13))):  # clutter, some of it skin-like
        rw, rh = int(rng.uniform(0.08, 0.45) * W), int(rng.uniform(0.08, 0.45) * H)
        x0, y0 = int(rng.uniform(-0.1, 1.0) * W), int(rng.uniform(-0.1, 1.0) * H)
        colour = skin() if rng.random() < 0.3 else rng.uniform(0.03, 0.9, 3)
        img[max(0, y0) : max(0, y0 + rh), max(0, x0) : max(0, x0 + rw)] = colour
    # the card: white frame around a grey interior, centred +-8 %
    cw = round(rng.uniform(0.55, 0.75) * W)
    ch = min(round(cw * rng.uniform(0.7, 0.95)), int(0.9 * H))
    cx0 = min(max(round(W / 2 + rng.uniform(-0.08, 0.08) * W - cw / 2), 1), W - cw - 1)
    cy0 = min(max(round(H / 2 + rng.uniform(-0.08, 0.08) * H - ch / 2), 1), H - ch - 1)
    bw = max(2, round(rng.uniform(0.04, 0.06) * cw))
    img[cy0 : cy0 + ch, cx0 : cx0 + cw] = 0.85 + rng.uniform(-0.02, 0.02)
    ix0, iy0, ix1, iy1 = cx0 + bw, cy0 + bw, cx0 + cw - bw, cy0 + ch - bw
    img[iy0:iy1, ix0:ix1] = rng.uniform(0.35, 0.5)
    # the patch: 30-45 % of the card width, aspect 0.8-1.25, +-2 % texture
    gap = 1 if variant == "near_frame" else 3
    pw = min(round(rng.uniform(0.30, 0.45) * cw), ix1 - ix0 - 2 * gap)
    ph = min(round(pw * rng.uniform(0.8, 1.25)), iy1 - iy0 - 2 * gap)
    px0 = int(rng.integers(ix0 + gap, ix1 - gap - pw + 1))
    py0 = int(rng.integers(iy0 + gap, iy1 - gap - ph + 1))
    px1, py1 = px0 + pw, py0 + ph
    colour = skin()
    texture = _smooth_field(rng, ph, pw, (max(2, ph // 3), max(2, pw // 3)), 1)
    img[py0:py1, px0:px1] = colour * (1 + 0.02 * (2 * texture - 1))
    n_spots = int(rng.integers(1, 4)) if variant == "spots" else int(rng.integers(0, 2))
    for _ in range(n_spots):
        s = int(rng.integers(2, 4))
        sx, sy = int(rng.integers(px0, px1 - s + 1)), int(rng.integers(py0, py1 - s + 1))
        bright = rng.random() < 0.5
        img[sy : sy + s, sx : sx + s] = rng.uniform(1.5, 3.0) if bright else colour * rng.uniform(0.1, 0.3)
    # a soft shadow: a half-plane with a Gaussian edge, >= 4 px from the patch, which stays lit
    theta = rng.uniform(0, 2 * np.pi)
    n = np.array([np.cos(theta), np.sin(theta)])
    nearest = float((np.array([[px0, py0], [px1, py0], [px0, py1], [px1, py1]]) @ n).max()) + 4.0
    far = float((np.array([[cx0, cy0], [cx0 + cw, cy0], [cx0, cy0 + ch], [cx0 + cw, cy0 + ch]]) @ n).max())
    offset = (
        rng.uniform(0, 2) if variant == "adjacent_shadow" else rng.uniform(0, 0.7 * max(0.0, far - nearest))
    )
    sigma = rng.uniform(3, 8)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    t = (xx * n[0] + yy * n[1] - nearest - offset) / sigma
    img *= (1 - rng.uniform(0.3, 0.6) / (1 + np.exp(-1.702 * t)))[:, :, None]  # logistic ~ Gaussian CDF
    # light and camera: cast, exposure, vignetting, lens blur, noise, sRGB, JPEG
    gains = np.exp(rng.normal(0, 0.35 if variant == "cast" else 0.15, 3))
    exposure = {"dark": (0.25, 0.4), "bright": (1.6, 2.3), "noisy": (0.4, 0.6)}.get(variant, (0.75, 1.05))
    img = img * gains / gains[1] * rng.uniform(*exposure)
    r2 = ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / ((W / 2) ** 2 + (H / 2) ** 2)
    img *= (1 - rng.uniform(0.1, 0.3) * r2)[:, :, None]
    img = np.clip(cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.4, 0.7)), 0, 1).astype(
        np.float64
    )
    gain = 25.0 if variant == "noisy" else 1.0  # high ISO
    img += rng.normal(0, 1, img.shape) * np.sqrt(gain * (rng.uniform(2e-4, 8e-4) * img + 2e-6))
    u8 = np.round(_srgb_encode(img) * 255).astype(np.uint8)
    if jpeg:
        ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 96))])
        assert ok
        u8 = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    return u8, Box(px0, py0, px1, py1)


# 8 variants x 5 seeds at 160 x 120, and three other sizes
SYNTHETIC_SET = [(1000 + 10 * i + k, v, 160, 120) for i, v in enumerate(VARIANTS) for k in range(5)] + [
    (2000, "plain", 320, 240),
    (2001, "spots", 640, 480),
    (2002, "adjacent_shadow", 120, 160),
]


@pytest.fixture(scope="module")
def located() -> list[tuple[str, Box, Box, float]]:
    """``(variant, true box, found box, seconds)`` for each photo of the synthetic set."""
    out = []
    for seed, variant, w, h in SYNTHETIC_SET:
        image, truth = render_photo(seed, variant, w, h)
        start = time.perf_counter()
        found = locate_patch(image)
        out.append((variant, truth, found, time.perf_counter() - start))
    return out


def test_iou_on_synthetic_photos(located: list[tuple[str, Box, Box, float]]) -> None:
    ious = np.array([found.iou(truth) for _, truth, found, _ in located])
    print(
        f"\nlocate_patch IoU over {len(ious)} synthetic photos: median {np.median(ious):.3f}, "
        f"min {ious.min():.3f}, mean {ious.mean():.3f}"
    )
    for variant in VARIANTS:
        v = [iou for (name, *_), iou in zip(located, ious, strict=True) if name == variant]
        print(f"  {variant:16s} min {min(v):.3f}  mean {np.mean(v):.3f}")
    assert len(ious) >= 30
    assert np.median(ious) >= 0.85
    assert ious.min() >= 0.6


def test_spots_and_shadows_do_not_move_the_edges(located: list[tuple[str, Box, Box, float]]) -> None:
    # a spot or a penumbra that moved a side would move it by several pixels; the edges are found to 1 px
    for variant, truth, found, _ in located:
        if variant in ("spots", "adjacent_shadow"):
            errors = np.abs(np.subtract(found.as_tuple(), truth.as_tuple()))
            assert errors.max() <= 2, (variant, truth, found)


@pytest.mark.parametrize("seed", range(5))
def test_the_patch_not_the_card_interior_in_a_chromatic_frame(seed: int) -> None:
    # A white border clipped to magenta by a wrong white balance makes the grey interior the most distinct
    # region; the patch lies inside it, and the innermost distinct region is the target.
    rng = np.random.default_rng(seed)
    image = np.empty((120, 160, 3))
    image[:] = rng.uniform(0.2, 0.8, 3)
    image[10:110, 20:140] = (1.0, 0.25, 0.95)
    image[18:102, 28:132] = 0.42
    truth = Box(92, 56, 122, 86)
    image[truth.y0 : truth.y1, truth.x0 : truth.x1] = (0.56, 0.44, 0.38)  # pale skin
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    assert locate_patch(image).iou(truth) >= 0.9


def test_float_input_gives_the_uint8_result() -> None:
    image, _ = render_photo(7, "plain")
    assert locate_patch(image.astype(np.float64) / 255) == locate_patch(image)


def test_margin_shrinks_the_box() -> None:
    image, _ = render_photo(11, "spots")
    whole = locate_patch(image)
    inner = locate_patch(image, margin=0.1)
    assert whole.x0 < inner.x0 and inner.x1 < whole.x1 and whole.y0 < inner.y0 and inner.y1 < whole.y1
    assert inner.width == whole.width - 2 * round(0.1 * whole.width)
    assert inner.height == whole.height - 2 * round(0.1 * whole.height)
    with pytest.raises(ValueError, match="margin"):
        locate_patch(image, margin=0.5)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8),
        np.clip(np.random.default_rng(1).normal(0.5, 0.15, (120, 160, 3)), 0, 1),
        np.full((120, 160, 3), 128, np.uint8),
        np.zeros((8, 8, 3), np.uint8),
    ],
    ids=["uniform-noise", "gaussian-noise", "flat-grey", "too-small"],
)
def test_no_patch_raises(image: np.ndarray) -> None:
    with pytest.raises(DataError, match="no uniform patch found"):
        locate_patch(image)


def test_bad_input_raises() -> None:
    with pytest.raises(ShapeError, match=r"\(H, W, 3\)"):
        locate_patch(np.zeros((120, 160), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        locate_patch(np.full((120, 160, 3), np.nan))


def test_box_iou_hand_cases() -> None:
    a = Box(0, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(Box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert Box(5, 0, 15, 10).iou(a) == pytest.approx(50 / 150)
    assert a.iou(Box(0, 0, 5, 5)) == pytest.approx(0.25)
    assert a.iou(Box(5, 5, 15, 15)) == pytest.approx(25 / 175)
    assert a.iou(Box(10, 0, 20, 10)) == 0.0  # touching edges share no pixel
    assert Box(3, 3, 3, 3).iou(Box(3, 3, 3, 3)) == 0.0  # empty boxes
    assert (a.width, a.height, a.area, a.as_tuple()) == (10, 10, 100, (0, 0, 10, 10))


def test_box_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="x0 <= x1"):
        Box(5, 0, 4, 10)
    with pytest.raises(TypeError, match="int"):
        Box(0, 0, 1.5, 2)  # type: ignore[arg-type]
    assert Box(np.int64(1), 2, 3, 4).as_tuple() == (1, 2, 3, 4)


def test_expand_and_context_clip_at_the_image_edge() -> None:
    image = np.arange(40 * 50 * 3).reshape(40, 50, 3)
    box = Box(2, 30, 12, 38)
    assert box.expand(0, 50, 40) == box
    assert box.expand(3, 50, 40) == Box(0, 27, 15, 40)
    assert Box(10, 10, 20, 20).expand(5, 50, 40) == Box(5, 5, 25, 25)
    with pytest.raises(ValueError, match=">= 0"):
        box.expand(-1, 50, 40)
    crop = crop_with_context(image, box, context=3)
    assert crop.shape == (13, 15, 3)
    np.testing.assert_array_equal(crop, image[27:40, 0:15])
    np.testing.assert_array_equal(crop_with_context(image, box), image[30:38, 2:12])


def _write_jpeg(path: Path, image: np.ndarray, make: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = make  # Make
    exif[0x0110] = "synthetic"  # Model
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=92, exif=exif)


def _label(name: str, skin_type: int, truth: Box) -> dict[str, object]:
    x0, y0, x1, y1 = truth.as_tuple()
    return {
        "image": name,
        "skin_type": skin_type,
        "patch_x0": x0,
        "patch_y0": y0,
        "patch_x1": x1,
        "patch_y1": y1,
    }


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Three JPEGs with EXIF (one in a sub-folder), a 16-bit PNG, a corrupt JPEG and labels.csv."""
    root = tmp_path / "photos"
    rows = []
    for name, seed, variant in (("a.jpg", 21, "plain"), ("b.jpeg", 22, "spots"), ("sub/c.jpg", 23, "dark")):
        image, truth = render_photo(seed, variant, jpeg=False)
        _write_jpeg(root / name, image, make=f"camera-{seed}")
        rows.append(_label(name, seed % 6, truth))
    image, truth = render_photo(24, "cast", jpeg=False)
    cv2.imwrite(str(root / "d.png"), image[:, :, ::-1].astype(np.uint16) * 257)
    rows.append(_label("d.png", 0, truth))
    (root / "broken.jpg").write_bytes(b"this is not a JPEG file")
    rows.append(_label("broken.jpg", 1, Box(0, 0, 1, 1)))
    rows.append(_label("missing.jpg", 2, Box(0, 0, 1, 1)))
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def test_crop_folder(photo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "crops"
    with pytest.warns(UserWarning, match=r"broken\.jpg") as caught:
        table = crop_folder(photo_folder, out, context=4, progress=False)
    assert len([w for w in caught if "skipped" in str(w.message)]) == 1
    names = ["a.jpg", "b.jpeg", "d.png", "sub/c.jpg"]
    assert table["image"].tolist() == names
    assert list(table.columns) == ["image", "x0", "y0", "x1", "y1", "context", "width", "height"]
    assert pd.read_csv(out / "crops.csv").equals(table)
    for row in table.itertuples(index=False):
        written = out / row.image
        assert written.is_file()
        box = Box(row.x0, row.y0, row.x1, row.y1).expand(4, 160, 120)
        with Image.open(written) as im:
            assert im.size == (row.width, row.height) == (box.width, box.height)
            if written.suffix != ".png":
                assert im.format == "JPEG"
                assert im.getexif()[0x010F].startswith("camera-")  # the source's EXIF survived
                assert im.getexif()[0x0110] == "synthetic"
    assert cv2.imread(str(out / "d.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert not (out / "broken.jpg").exists()

    labels = pd.read_csv(out / "labels.csv")
    assert sorted(labels["image"]) == sorted(names)  # only the cropped images' rows
    assert "skin_type" in labels.columns and "iou" in labels.columns
    assert labels["iou"].min() >= 0.6
    assert (out / "contact_sheet.png").stat().st_size > 0
    with Image.open(out / "contact_sheet.png") as im:
        assert im.format == "PNG"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_crop_folder_without_labels_or_sheet(tmp_path: Path) -> None:
    image, _ = render_photo(31, "bright", jpeg=False)
    _write_jpeg(tmp_path / "in" / "x.jpg", image, make="m")
    table = crop_folder(tmp_path / "in", tmp_path / "out", sheet=False, progress=False)
    assert table["context"].tolist() == [0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["crops.csv", "x.jpg"]
    with pytest.raises(DataError, match="no such folder"):
        crop_folder(tmp_path / "nowhere", tmp_path / "out", progress=False)


def test_locate_patches_names_the_bad_file(photo_folder: Path) -> None:
    good = [photo_folder / "a.jpg", photo_folder / "sub" / "c.jpg"]
    boxes = locate_patches(good, progress=False)
    assert list(boxes) == good
    labels = pd.read_csv(photo_folder / "labels.csv").set_index("image")
    for path, box in boxes.items():
        name = path.relative_to(photo_folder).as_posix()
        truth = Box(*(int(labels.at[name, c]) for c in ("patch_x0", "patch_y0", "patch_x1", "patch_y1")))
        assert box.iou(truth) >= 0.6
    with pytest.raises(DataError, match=r"broken\.jpg"):
        locate_patches([*good, photo_folder / "broken.jpg"], progress=False)
    noise = photo_folder / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"noise\.png: no uniform patch found"):
        locate_patches([noise], progress=False)


def test_contact_sheet(tmp_path: Path) -> None:
    images, boxes, truths = [], [], []
    for seed in (41, 42, 43):
        image, truth = render_photo(seed, "plain")
        images.append(image)
        boxes.append(locate_patch(image))
        truths.append(truth)
    path = contact_sheet(
        images,
        boxes,
        tmp_path / "sheet.png",
        context=3,
        true_boxes=[truths[0], None, truths[2]],
        titles=["a", "b", "c"],
    )
    assert path == tmp_path / "sheet.png" and path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    with pytest.raises(ValueError, match="2 boxes"):
        contact_sheet(images, boxes[:2], tmp_path / "bad.png")


def test_warning_free_on_good_photos(tmp_path: Path) -> None:
    image, _ = render_photo(51, "plain", jpeg=False)
    _write_jpeg(tmp_path / "in" / "p.jpg", image, make="m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crop_folder(tmp_path / "in", tmp_path / "out", progress=False)


def test_crop_of_a_rotated_phone_photo_is_upright_once(tmp_path: Path) -> None:
    # A phone stores the sensor's pixels and says in EXIF how to turn them (orientation 6: 90 degrees
    # clockwise). tinct reads the photo upright, so the crop is cut upright; the EXIF copied into the crop
    # must then say "upright" (1), or every viewer and tinct itself would turn the crop a second time.
    image, _ = render_photo(5)
    _write_jpeg(tmp_path / "upright" / "p.jpg", image, make="m")
    stored = np.ascontiguousarray(np.rot90(image, k=1))  # what the sensor recorded
    exif = Image.Exif()
    exif[0x010F] = "m"
    exif[0x0112] = 6
    (tmp_path / "phone").mkdir()
    Image.fromarray(stored).save(tmp_path / "phone" / "p.jpg", quality=92, exif=exif)

    upright = crop_folder(tmp_path / "upright", tmp_path / "out_upright", sheet=False, progress=False)
    phone = crop_folder(tmp_path / "phone", tmp_path / "out_phone", sheet=False, progress=False)
    assert phone[["x0", "y0", "x1", "y1"]].equals(upright[["x0", "y0", "x1", "y1"]])
    with Image.open(tmp_path / "out_phone" / "p.jpg") as im:
        assert im.getexif().get(0x0112, 1) == 1 and im.getexif()[0x010F] == "m"
        crop = np.asarray(im.convert("RGB"), dtype=np.float64)
    with Image.open(tmp_path / "out_upright" / "p.jpg") as im:
        reference = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert crop.shape == reference.shape
    assert np.abs(crop - reference).mean() < 4.0  # the same pixels, up to JPEG re-encoding
