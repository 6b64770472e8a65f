"""Camera raw files through LibRaw (tinct.io.raw) and ``tinct predict`` on them.

Every DNG is written by the test (pidng) from a rendered scene whose illuminant is known: patches of
reflectances lit by a camera-RGB illuminant, mosaicked RGGB with a black level of 512, a white level of
16383 and a small saturated block, so every number read back has an exact expected value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tinct.color.camera import camera_to_linear_srgb, camera_to_srgb_matrix
from tinct.core.exceptions import DataError
from tinct.io.raw import RAW_SUFFIXES, is_camera_raw, read_camera_raw

pidng = pytest.importorskip("pidng.core")  # tinct[test]

REPO = Path(__file__).resolve().parents[2]
BLACK, WHITE = 512, 16383
H, W = 64, 96  # LibRaw refuses images under 22 pixels a side
#: Camera RGB of the light: reddish, so an unbalanced grey is visibly red.
ILLUMINANT = np.array([0.9, 0.6, 0.35])
#: XYZ -> camera of the Canon EOS 5D Mark II under D65 (dcraw.c adobe_coeff, / 10000).
COLOR_MATRIX = np.array([[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]])
GREY = (slice(1, 15), slice(1, 15))  # inside the grey patch at the top left, away from its edges
SATURATED = (slice(52, 56), slice(84, 88))  # photosites at the white level
#: LibRaw scales to 16 bits and truncates twice (the scaling, then its output curve): two 16-bit steps.
STEP = 2 / 65535


def scene(illuminant: np.ndarray = ILLUMINANT) -> np.ndarray:
    """``H x W x 3`` camera RGB: 16 x 16 patches (grey 0.5 at the top left, then random colours) times the light."""
    rng = np.random.default_rng(0)
    reflectance = rng.uniform(0.05, 0.9, (H // 16, W // 16, 3))
    reflectance[0, 0] = 0.5
    return np.repeat(np.repeat(reflectance, 16, axis=0), 16, axis=1) * illuminant


def mosaic(rgb: np.ndarray, black: float | list[int] = BLACK, white: int = WHITE) -> np.ndarray:
    """RGGB raw code values of camera RGB in [0, 1] (per-site black levels: R, G1, G2, B)."""
    b = np.broadcast_to(np.asarray(black, dtype=np.float64), (4,))
    sites = [(0, 0, 0, b[0]), (0, 1, 1, b[1]), (1, 0, 1, b[2]), (1, 1, 2, b[3])]
    out = np.zeros(rgb.shape[:2])
    for r, c, ch, level in sites:
        out[r::2, c::2] = level + rgb[r::2, c::2, ch] * (white - level)
    out = np.round(out)
    out[SATURATED] = white
    return out.astype(np.uint16)


def rationals(values: np.ndarray) -> list[list[int]]:
    return [[round(float(v) * 10000), 10000] for v in np.ravel(values)]


def write_dng(
    path: Path,
    raw: np.ndarray,
    *,
    black: int | list[int] = BLACK,
    white: int = WHITE,
    orientation: int = 1,
    matrices: tuple[tuple[np.ndarray, int], ...] = ((COLOR_MATRIX, 21),),
) -> Path:
    """A DNG of the RGGB mosaic ``raw``; ``matrices``: (ColorMatrix, CalibrationIlluminant) 1 and 2."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CFAPattern, PhotometricInterpretation

    t = DNGTags()
    t.set(Tag.ImageWidth, raw.shape[1])
    t.set(Tag.ImageLength, raw.shape[0])
    t.set(Tag.TileWidth, raw.shape[1])
    t.set(Tag.TileLength, raw.shape[0])
    t.set(Tag.Orientation, orientation)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    if isinstance(black, list):
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white)
    for (matrix, illuminant), cm, ci in zip(
        matrices,
        (Tag.ColorMatrix1, Tag.ColorMatrix2),
        (Tag.CalibrationIlluminant1, Tag.CalibrationIlluminant2),
        strict=False,  # one or two matrices
    ):
        t.set(cm, rationals(matrix))
        t.set(ci, illuminant)
    t.set(Tag.AsShotNeutral, rationals(ILLUMINANT / ILLUMINANT.max()))
    t.set(Tag.Make, "Tinct")
    t.set(Tag.Model, "Test Camera")
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    path.write_bytes(bytes(writer.convert(raw)))
    return path


@pytest.fixture(scope="module")
def dng(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dng(tmp_path_factory.mktemp("raw") / "scene.dng", mosaic(scene()))


def expected_grey() -> np.ndarray:
    """Linear camera RGB of the grey patch from its code values: (value - black) / (white - black)."""
    code = np.round(BLACK + 0.5 * ILLUMINANT * (WHITE - BLACK))
    return (code - BLACK) / (WHITE - BLACK)


def test_suffixes() -> None:
    assert {".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"} <= set(
        RAW_SUFFIXES
    )
    assert is_camera_raw("a/IMG_1.NEF") and not is_camera_raw("a.png") and not is_camera_raw("dng")


def test_levels_and_camera_are_read_from_the_file(dng: Path) -> None:
    cam = read_camera_raw(dng)
    assert cam.black_level == (BLACK, BLACK, BLACK) and cam.white_level == WHITE
    assert cam.camera == "Tinct Test Camera" and cam.path == dng
    assert cam.linear.shape == (3, H, W) and cam.linear.dtype == torch.float32
    assert cam.mask.shape == (1, H, W) and cam.mask.dtype == torch.bool


def test_grey_patch_is_black_subtracted_and_divided_by_the_range(dng: Path) -> None:
    grey = read_camera_raw(dng).linear[(slice(None), *GREY)].double()
    assert torch.allclose(grey, torch.tensor(expected_grey())[:, None, None], atol=STEP, rtol=0)


def test_no_white_balance_a_grey_keeps_the_colour_of_the_light(dng: Path) -> None:
    grey = read_camera_raw(dng).linear[(slice(None), *GREY)].double().mean(dim=(1, 2))
    assert torch.allclose(grey / grey[1], torch.tensor(ILLUMINANT / ILLUMINANT[1]), rtol=1e-3)


def test_white_level_is_the_files_even_when_nothing_reaches_it(tmp_path: Path) -> None:
    # LibRaw would lower the white level to the brightest value (above 75 % of it) unless told not to
    raw = mosaic(scene())
    raw[SATURATED] = raw[0, 0]
    dark = read_camera_raw(write_dng(tmp_path / "dark.dng", raw))
    assert not dark.mask.any()
    grey = dark.linear[(slice(None), *GREY)].double()
    assert torch.allclose(grey, torch.tensor(expected_grey())[:, None, None], atol=STEP, rtol=0)


def test_saturated_photosites_are_masked_with_their_neighbours(dng: Path) -> None:
    cam = read_camera_raw(dng)
    expected = np.zeros((H, W), dtype=bool)
    expected[51:57, 83:89] = True  # the saturated block and the pixels interpolated from it
    assert np.array_equal(cam.mask[0].numpy(), expected)
    assert bool((cam.linear[(slice(None), *SATURATED)].amax(dim=0) == 1.0).all())
    assert bool((cam.linear[:, ~cam.mask[0]] < 1.0).all())


def test_per_channel_black_levels(tmp_path: Path) -> None:
    levels = [500, 510, 520, 530]  # R, G1, G2, B
    cam = read_camera_raw(write_dng(tmp_path / "c.dng", mosaic(scene(), levels), black=levels))
    assert cam.black_level == (500, 515, 530)
    grey = cam.linear[(slice(None), *GREY)].double().mean(dim=(1, 2)).numpy()
    code = np.round(np.array(levels) + 0.5 * ILLUMINANT[[0, 1, 1, 2]] * (WHITE - np.array(levels)))
    per_site = (code - levels) / (WHITE - np.array(levels))
    assert np.allclose(grey[[0, 2]], per_site[[0, 3]], atol=STEP, rtol=0)
    assert np.allclose(grey[1], per_site[1:3].mean(), rtol=1e-3)  # the two greens share one channel


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_the_files_orientation_turns_image_and_mask(tmp_path: Path, orientation: int, turn: int) -> None:
    upright = read_camera_raw(write_dng(tmp_path / "a.dng", mosaic(scene())))
    turned = read_camera_raw(write_dng(tmp_path / "b.dng", mosaic(scene()), orientation=orientation))
    assert torch.equal(turned.linear, torch.rot90(upright.linear, turn, dims=(1, 2)))
    assert torch.equal(turned.mask, torch.rot90(upright.mask, turn, dims=(1, 2)))
    assert any("orientation" in note for note in turned.notes)


def test_xyz_to_camera_is_the_color_matrix_written(dng: Path) -> None:
    cam = read_camera_raw(dng)
    assert cam.xyz_to_camera is not None and cam.xyz_to_camera.dtype == torch.float64
    assert np.allclose(cam.xyz_to_camera.numpy(), COLOR_MATRIX, atol=1e-12)
    assert "colour matrix: DNG ColorMatrix1" in cam.notes


def test_of_two_color_matrices_the_one_calibrated_nearest_d65_is_taken(tmp_path: Path) -> None:
    tungsten = COLOR_MATRIX * np.array([[1.2], [1.0], [0.7]])
    cam = read_camera_raw(
        write_dng(tmp_path / "two.dng", mosaic(scene()), matrices=((tungsten, 17), (COLOR_MATRIX, 21)))
    )
    assert np.allclose(cam.xyz_to_camera.numpy(), COLOR_MATRIX, atol=1e-12)
    assert "colour matrix: DNG ColorMatrix2" in cam.notes


def test_preview_matrix_maps_the_camera_neutral_to_srgb_white_as_libraw_does(dng: Path) -> None:
    import rawpy

    cam = read_camera_raw(dng)
    neutral = torch.tensor([[0.3, 0.3, 0.3], [1.0, 1.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(camera_to_linear_srgb(neutral, cam.xyz_to_camera, dim=-1), neutral, atol=1e-12)
    # LibRaw's own camera -> sRGB of the DNG (dcraw's cam_xyz_coeff with its 6-digit sRGB matrix)
    with rawpy.imread(str(dng)) as raw:
        libraw = torch.from_numpy(raw.color_matrix[:, :3].astype(np.float64))
    assert torch.allclose(camera_to_srgb_matrix(cam.xyz_to_camera), libraw, atol=2e-3)


def test_a_corrupt_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "noise.dng"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"noise\.dng: cannot read the camera raw file \(Unsupported file"):
        read_camera_raw(bad)
    (tmp_path / "empty.nef").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.nef: empty file"):
        read_camera_raw(tmp_path / "empty.nef")
    with pytest.raises(DataError, match=r"gone\.cr2: no such file"):
        read_camera_raw(tmp_path / "gone.cr2")
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"a\.png: not a camera raw file"):
        read_camera_raw(tmp_path / "a.png")


def test_a_truncated_file_is_a_data_error(dng: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.dng"
    cut.write_bytes(dng.read_bytes()[: dng.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.dng: cannot read the camera raw file .*truncated"):
        read_camera_raw(cut)


def test_the_pixel_limit_refuses_a_larger_raw(dng: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        DataError, match=r"scene\.dng: image of 96 x 64 = 6,144 pixels exceeds the limit of 6,143"
    ):
        read_camera_raw(dng, max_pixels=H * W - 1)
    assert read_camera_raw(dng, max_pixels=H * W).linear.shape == (3, H, W)
    monkeypatch.setenv("TINCT_MAX_PIXELS", "1000")
    with pytest.raises(DataError, match="exceeds the limit of 1,000"):
        read_camera_raw(dng)


# -- tinct predict on raw files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny illuminant run: the shipped Mondrian recipe, 1 epoch on 32 scenes of 16 x 16 pixels."""
    from tinct.engine import train
    from tinct.engine.config import load_config

    root = tmp_path_factory.mktemp("run")
    small = {"data.n_train": 32, "data.n_val": 16, "data.n_test": 16, "data.size": 16, "data.batch_size": 16}
    tiny = {"model.width": 4, "model.depth": 2, "model.hidden": 8, "trainer.max_epochs": 1}
    cfg = load_config(
        REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml",
        {**small, **tiny, "trainer.progress": "none", "output_dir": str(root / "runs")},
    )
    train(cfg, run_dir=root / "run", verbose=False, test=False)
    return root / "run"


def test_predict_files_reads_a_raw_file_and_renders_it_with_the_camera_matrix(
    run: Path, dng: Path, tmp_path: Path
) -> None:
    from tinct.engine import load_task
    from tinct.io.image import read_image

    task = load_task(run)
    [row] = task.predict_files([dng], tmp_path / "out")
    illuminant = np.array([row["r"], row["g"], row["b"]])
    assert row["image"] == str(dng) and np.isclose(np.linalg.norm(illuminant), 1.0, atol=1e-5)
    preview = read_image(row["preview"])
    assert Path(row["preview"]) == tmp_path / "out" / "scene_balanced.png"
    assert preview.array.shape == (H, W, 3) and preview.array.dtype == np.uint8


def test_predict_cli_collects_raw_files_from_a_folder(run: Path, dng: Path, tmp_path: Path, capsys) -> None:
    import shutil

    from tinct.cli.main import main

    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(dng, folder / "IMG_0001.DNG")
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "p")]) == 0
    assert f"image={folder / 'IMG_0001.DNG'}" in capsys.readouterr().out
    assert (tmp_path / "p" / "IMG_0001_balanced.png").is_file()
