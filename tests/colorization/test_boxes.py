"""Object boxes: the four file formats agree, selection, masks, bad files, COCO128, the detector source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.colorization.boxes import MIN_SCORE, TOP_K, Boxes, BoxSource, open_box_source
from tinct.colorization.detector import DETECTORS, detector_source
from tinct.core.exceptions import ConfigError, DataError, ShapeError, TypeCheckError

W, H = 64, 48
# Pixel boxes [x0, y0, x1, y1], scores and classes of the generated photo.
XYXY = np.array([[4.0, 6.0, 30.0, 40.0], [10.5, 2.25, 63.5, 47.0], [0.0, 0.0, 64.0, 48.0]])
SCORES = np.array([0.9, 0.75, 0.5])
LABELS = np.array([3, 7, 0])


def _photo(folder: Path, name: str = "photo.png", size: tuple[int, int] = (W, H)) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _yolo_lines(xyxy: np.ndarray = XYXY, scores: np.ndarray | None = SCORES) -> str:
    lines = []
    for k, (x0, y0, x1, y1) in enumerate(xyxy):
        fields = [LABELS[k], (x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H]
        fields += [] if scores is None else [scores[k]]
        lines.append(" ".join(f"{v:.10g}" for v in fields))
    return "\n".join(lines) + "\n"


def _json_boxes() -> list[list[float]]:
    return [[*box, s] for box, s in zip(XYXY.tolist(), SCORES.tolist(), strict=True)]


def _coco(scale: float = 1.0, width: float = W, height: float = H) -> dict:
    annotations = [
        {"id": k, "image_id": 7, "bbox": [x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale],
         "category_id": int(LABELS[k]), "score": float(SCORES[k])}
        for k, (x0, y0, x1, y1) in enumerate(XYXY)
    ]  # fmt: skip
    images = [{"id": 7, "file_name": "train/photo.png", "width": width * scale, "height": height * scale}]
    images.append({"id": 8, "file_name": "other.png", "width": 10, "height": 10})
    return {"images": images, "annotations": annotations, "categories": []}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _all_formats(root: Path) -> dict[str, Path]:
    """The same boxes of ``root/images/photo.png`` in each format."""
    _photo(root / "images")
    return {
        "yolo folder": _write(root / "yolo" / "photo.txt", _yolo_lines()).parent,
        "yolo dataset": _write(root / "labels" / "photo.txt", _yolo_lines()).parent.parent,
        "coco": _write(root / "coco.json", json.dumps(_coco())),
        "coco resized": _write(root / "coco2.json", json.dumps(_coco(scale=2.5))),
        "json by name": _write(root / "by_name.json", json.dumps({"photo.png": _json_boxes(), "x.jpg": []})),
        "json by stem": _write(root / "by_stem.json", json.dumps({"images/photo": _json_boxes()})),
        "json folder": _write(root / "per_image" / "photo.json", json.dumps(_json_boxes())).parent,
    }


def test_every_format_reads_the_same_boxes(tmp_path: Path) -> None:
    photo = tmp_path / "images" / "photo.png"
    for kind, spec in _all_formats(tmp_path).items():
        source = open_box_source(spec)
        assert isinstance(source, BoxSource)
        assert str(spec) in source.description and "\n" not in source.description
        boxes = source.boxes_for(photo, (H, W))
        np.testing.assert_allclose(boxes.xyxy, XYXY, atol=1e-6, err_msg=kind)
        np.testing.assert_allclose(boxes.scores, SCORES, atol=1e-9, err_msg=kind)
        expected = LABELS if kind.startswith(("yolo", "coco")) else [-1, -1, -1]
        np.testing.assert_array_equal(boxes.labels, expected, err_msg=kind)
        assert boxes.xyxy.dtype == np.float64 and boxes.labels.dtype == np.int64
        # another photo: no label file, no JSON entry, no COCO image record
        other = _photo(tmp_path / "images", "unlisted.png")
        assert len(source.boxes_for(other, (H, W))) == 0


def test_yolo_conventions(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "images" / "sub")
    _write(tmp_path / "labels" / "sub" / "photo.txt", _yolo_lines(scores=None))
    _write(tmp_path / "labels" / "empty.txt", "\n  \n")
    source = open_box_source(tmp_path)
    boxes = source.boxes_for(photo, (H, W))  # images/sub/photo.png -> labels/sub/photo.txt
    np.testing.assert_allclose(boxes.xyxy, XYXY, atol=1e-6)
    np.testing.assert_array_equal(boxes.scores, [1.0, 1.0, 1.0])  # ground truth
    assert len(source.boxes_for(_photo(tmp_path / "images", "empty.png"), (H, W))) == 0  # background image
    assert len(source.boxes_for(tmp_path / "nowhere.png", (H, W), rgb=np.zeros((H, W, 3)))) == 0


def test_boxes_within_tolerance_are_clipped(tmp_path: Path) -> None:
    photo = _photo(tmp_path)
    _write(tmp_path / "yolo" / "photo.txt", "1 0.5 0.5 1.0008 1.0008\n")
    pixels = {"photo.png": [[-0.9, -0.5, W + 0.9, H + 1.0, 1.0]]}
    for spec in (tmp_path / "yolo", _write(tmp_path / "b.json", json.dumps(pixels))):
        boxes = open_box_source(spec).boxes_for(photo, (H, W))
        np.testing.assert_allclose(boxes.xyxy, [[0, 0, W, H]])


def test_select_is_strict_sorted_stable_and_capped() -> None:
    scores = np.array([0.7, 0.71, 0.95, 0.71, 0.2, 0.8, 0.99, 0.75, 0.9, 0.72, 0.85, 0.74, 0.71, 0.7000001])
    n = len(scores)
    xyxy = np.stack([np.arange(n), np.zeros(n), np.arange(n) + 1.0, np.ones(n)], axis=1)
    boxes = Boxes(xyxy, scores, np.arange(n))
    every = boxes.select(top_k=100)
    assert 0 not in every.labels and 4 not in every.labels  # 0.7 itself is not above 0.7
    assert 13 in every.labels  # 0.7000001 is
    assert every.labels.tolist() == [6, 2, 8, 10, 5, 7, 11, 9, 1, 3, 12, 13]  # ties keep their order
    top = boxes.select()
    assert (MIN_SCORE, TOP_K) == (0.7, 8)
    assert top.labels.tolist() == [6, 2, 8, 10, 5, 7, 11, 9]
    np.testing.assert_array_equal(top.xyxy[:, 0], top.labels)  # rows move together
    assert len(boxes.select(top_k=0)) == 0 and len(Boxes.empty().select()) == 0
    assert boxes.select(min_score=0.0, top_k=3).labels.tolist() == [6, 2, 8]
    with pytest.raises(ValueError, match="top_k"):
        boxes.select(top_k=-1)


def test_mask_uses_pixel_centres() -> None:
    boxes = Boxes(np.array([[1.0, 0.5, 3.0, 2.0], [4.2, 3.0, 5.0, 4.0]]), np.ones(2), -np.ones(2, np.int64))
    expected = np.array(
        [
            [0, 1, 1, 0, 0],  # row centre 0.5 is on the edge y0 = 0.5: inside
            [0, 1, 1, 0, 0],  # column centres 1.5 and 2.5 in [1, 3]; 0.5 and 3.5 are not
            [0, 0, 0, 0, 0],  # 2.5 > y1 = 2
            [0, 0, 0, 0, 1],  # second box: column centre 4.5 in [4.2, 5], row centre 3.5 in [3, 4]
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boxes.mask(4, 5), expected)
    assert not Boxes.empty().mask(3, 2).any() and Boxes.empty().mask(3, 2).shape == (3, 2)

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 20, (6, 2, 2))
    xyxy = np.concatenate([corners.min(1), corners.max(1) + 0.01], axis=1)[:, [0, 1, 2, 3]]
    many = Boxes(xyxy, rng.uniform(0, 1, 6), np.zeros(6, np.int64))
    r, c = np.mgrid[0:17, 0:23] + 0.5
    brute = np.zeros((17, 23), bool)
    for x0, y0, x1, y1 in many.xyxy:
        brute |= (x0 <= c) & (c <= x1) & (y0 <= r) & (r <= y1)
    np.testing.assert_array_equal(many.mask(17, 23), brute)


def test_scaled_and_validation() -> None:
    boxes = Boxes(XYXY, SCORES, LABELS)
    half = boxes.scaled(0.5, 2.0)
    np.testing.assert_allclose(half.xyxy, XYXY * [0.5, 2.0, 0.5, 2.0])
    np.testing.assert_array_equal(half.scores, SCORES)
    np.testing.assert_array_equal(half.labels, LABELS)
    with pytest.raises(ValueError, match="scale"):
        boxes.scaled(0.0, 1.0)
    with pytest.raises(ValueError):
        boxes.xyxy[0, 0] = 1.0  # read-only
    source = XYXY.copy()
    Boxes(source, SCORES, LABELS)
    source[0, 0] = 2.0  # the caller's array stays writable and is not shared
    with pytest.raises(ShapeError):
        Boxes(XYXY[:, :3], SCORES, LABELS)
    with pytest.raises(ShapeError):
        Boxes(XYXY, SCORES[:2], LABELS)
    with pytest.raises(ValueError, match="finite"):
        Boxes(np.array([[0.0, 0.0, np.nan, 1.0]]), np.ones(1), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="integers"):
        Boxes(np.array([[0.0, 0.0, 1.0, 1.0]]), np.ones(1), np.array([0.5]))
    np.testing.assert_array_equal(Boxes(XYXY, SCORES, LABELS.astype(float)).labels, LABELS)
    with pytest.raises(ValueError, match="x0 < x1"):
        Boxes(np.array([[2.0, 0.0, 1.0, 1.0]]), np.ones(1), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Boxes(np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([1.5]), np.zeros(1, np.int64))
    assert len(Boxes.empty()) == 0 and Boxes.empty().xyxy.shape == (0, 4)


# (file to write, its text, the substring the message must also hold); the file name is always checked.
BAD_YOLO = [
    ("3 0.5 0.5 0.2\n", "photo.txt:1: expected 5 or 6 fields"),
    ("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2 0.9 3 4\n", "photo.txt:2: expected 5 or 6 fields"),
    ("0 0.5 abc 0.2 0.2\n", "photo.txt:1: not a number"),
    ("0 0.5 nan 0.2 0.2\n", "photo.txt:1: NaN or infinity"),
    ("0 0.5 0.5 inf 0.2\n", "photo.txt:1: NaN or infinity"),
    ("0 0.5 0.5 0 0.2\n", "width 0"),
    ("0 0.5 0.5 0.2 -0.1\n", "height -0.1"),
    ("0 0.5 0.5 0.2 0.2 1.5\n", "score 1.5 is outside [0, 1]"),
    ("0.5 0.5 0.5 0.2 0.2\n", "class '0.5' is not an integer"),
    (
        "\n0 0.5 0.5 1.01 0.2\n",
        "photo.txt:2: box [0.5, 0.5, 1.01, 0.2] (cx cy w h, normalised) is outside the 64 x 48",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_YOLO)
def test_bad_yolo_lines(tmp_path: Path, text: str, expected: str) -> None:
    label = _write(tmp_path / "labels" / "photo.txt", text)
    source = open_box_source(tmp_path / "labels")
    with pytest.raises(DataError, match=None) as err:
        source.boxes_for(_photo(tmp_path), (H, W))
    message = str(err.value)
    assert str(label) in message and expected in message and "\n" not in message


BAD_JSON_BOXES = [
    ('{"photo.png": [[1, 2, NaN, 4]]}', "entry 'photo.png' box 0: each value is nan"),
    ('{"photo.png": [[1, 2, 3, Infinity]]}', "box 0: each value is inf"),
    ('{"photo.png": [[1, 2, 3, 4], [1, 2, 3, "4"]]}', "box 1: each value must be a number"),
    ('{"photo.png": [[1, 2, 3]]}', "box 0: expected [x0, y0, x1, y1]"),
    ('{"photo.png": [[5, 2, 5, 4]]}', "box 0: box [5, 2, 5, 4] has width or height <= 0"),
    ('{"photo.png": [[1, 2, 3, 4, -0.1]]}', "score -0.1 is outside [0, 1]"),
    ('{"photo.png": [[1, 2, 66, 4, 0.5]]}', "box [1, 2, 66, 4] (x0 y0 x1 y1) is outside the 64 x 48"),
    ('{"photo.png": [[-1.5, 2, 6, 4]]}', "is outside the 64 x 48 (width x height) image photo.png"),
    ('{"photo.png": [[64.5, 2, 64.9, 4]]}', "is outside"),  # in the margin only: nothing left when clipped
    ('{"photo.png": [[1, 2, 3, 4]], "photo": []}', "keys 'photo.png', 'photo' all name"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_JSON_BOXES)
def test_bad_per_image_json(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "boxes.json", text)
    with pytest.raises(DataError) as err:
        open_box_source(path).boxes_for(_photo(tmp_path), (H, W))
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def _coco_with(**changes: object) -> dict:
    data = _coco()
    for key, value in changes.items():
        target, field = key.split("__")
        data[target][0][field] = value
    return data


BAD_COCO = [
    (
        _coco_with(annotations__bbox=[1, 2, 0, 4]),
        "annotations[0]: bbox [1, 2, 0, 4] has width or height <= 0",
    ),
    (_coco_with(annotations__bbox=[1, 2, 3]), "annotations[0]: 'bbox' must be [x, y, width, height]"),
    (_coco_with(annotations__bbox=[60, 2, 10, 4]), "annotations[0]: box [60, 2, 10, 4] (x y w h) is outside"),
    (_coco_with(annotations__score=1.01), "annotations[0]: score 1.01 is outside [0, 1]"),
    (_coco_with(annotations__score=float("nan")), "annotations[0]: 'score' is nan"),
    (_coco_with(images__width=0), "images[0]: width and height must be > 0"),
    (_coco_with(images__width=80), "images[0] is 80 x 48 but"),
    (_coco_with(images__width=H, images__height=W), "width and height swapped"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_COCO)
def test_bad_coco(tmp_path: Path, data: dict, expected: str) -> None:
    path = _write(tmp_path / "instances.json", json.dumps(data))
    photo = _photo(tmp_path / "images")
    with pytest.raises(DataError) as err:
        open_box_source(path).boxes_for(photo, (H, W))
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message
    if "images[0] is" in expected:
        assert str(photo) in message  # both files are named


BAD_FILES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("missing", lambda d: d / "nothing.json", "no such box file or folder"),
    ("empty", lambda d: _write(d / "b.json", ""), "empty JSON file"),
    ("blank", lambda d: _write(d / "b.json", " \n\t\n"), "empty JSON file"),
    ("not json", lambda d: _write(d / "b.json", '{"photo.png": [[1, 2, 3, 4]]'), "not valid JSON"),
    ("list", lambda d: _write(d / "b.json", "[[1, 2, 3, 4]]"), "unrecognised JSON structure"),
    ("values", lambda d: _write(d / "b.json", '{"photo.png": 3}'), "unrecognised JSON structure"),
    ("repeated", lambda d: _write(d / "b.json", '{"a": [], "a": []}'), "given twice"),
    (
        "coco half",
        lambda d: _write(d / "b.json", '{"images": []}'),
        "needs the lists 'images' and 'annotations'",
    ),
    (
        "coco image",
        lambda d: _write(d / "b.json", '{"images": [{"id": 1}], "annotations": []}'),
        "images[0] needs",
    ),
    (
        "coco ann",
        lambda d: _write(d / "b.json", '{"images": [], "annotations": [{"bbox": []}]}'),
        "annotations[0]",
    ),
    ("txt file", lambda d: _write(d / "b.txt", "0 0.5 0.5 0.1 0.1\n"), "not a box file"),
    ("empty folder", lambda d: (d / "e").mkdir() or d / "e", "no box files"),
    (
        "mixed folder",
        lambda d: _write(d / "m" / "a.json", "[]") and _write(d / "m" / "b.txt", "").parent,
        "both",
    ),
    (
        "no labels",
        lambda d: _write(d / "ds" / "labels" / "classes.txt", "person\n").parent.parent,
        "no YOLO .txt",
    ),
]


@pytest.mark.parametrize(("make", "expected"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_box_files(tmp_path: Path, make: Callable[[Path], Path], expected: str) -> None:
    spec = make(tmp_path)
    with pytest.raises(DataError) as err:
        open_box_source(spec)
    message = str(err.value)
    assert str(spec) in message and expected in message and "\n" not in message


def test_bad_file_in_json_folder_and_missing_photo(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "images")
    folder = tmp_path / "per_image"
    _write(folder / "photo.json", "")
    _write(folder / "ok.json", "[]")
    with pytest.raises(DataError, match=r"photo\.json: empty JSON file"):
        open_box_source(folder).boxes_for(photo, (H, W))
    _write(folder / "photo.json", '{"boxes": []}')
    with pytest.raises(DataError, match=r"photo.json: expected a list of \[x0, y0, x1, y1, score\]"):
        open_box_source(folder).boxes_for(photo, (H, W))
    for spec in _all_formats(tmp_path / "all").values():
        with pytest.raises(DataError, match=r"gone\.png: no such image file"):
            open_box_source(spec).boxes_for(tmp_path / "images" / "gone.png", (H, W))
    coco = open_box_source(_write(tmp_path / "c.json", json.dumps(_coco())))
    with pytest.raises(ValueError, match=r"size must be \(H, W\)"):
        coco.boxes_for(photo, (H, 0))


def test_coco128(shared_file: Callable[[str], Path]) -> None:
    from tinct.io.image import image_size

    root = shared_file("detection/coco128")
    images = sorted((root / "images").glob("*.jpg"))
    assert len(images) == 128
    for source in (open_box_source(root), open_box_source(root / "labels")):
        per_image = {}
        for image in images:
            w, h = image_size(image)
            boxes = source.boxes_for(image, (h, w))
            assert (boxes.xyxy[:, 2] <= w).all() and (boxes.xyxy[:, 3] <= h).all()
            assert ((boxes.labels >= 0) & (boxes.labels < 80)).all() and (boxes.scores == 1.0).all()
            per_image[image.stem] = len(boxes)
        # Two photos are background images (no label file); two label files (12 boxes) have no photo here.
        assert sum(per_image.values()) == 929 and sum(n == 0 for n in per_image.values()) == 2
        orphans = sorted({p.stem for p in (root / "labels").glob("*.txt")} - set(per_image))
        assert len(orphans) == 2
        blank = np.zeros((480, 640, 3))
        extra = sum(len(source.boxes_for(root / "images" / f"{s}.jpg", (480, 640), blank)) for s in orphans)
        assert sum(per_image.values()) + extra == 941  # the data README's count: all label files


DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def detector_state() -> dict[str, torch.Tensor]:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    return model.state_dict()


def _check_valid(boxes: Boxes, h: int, w: int) -> None:
    assert boxes.xyxy.shape == (len(boxes), 4) and boxes.scores.shape == boxes.labels.shape == (len(boxes),)
    assert (
        (boxes.xyxy >= 0).all() and (boxes.xyxy[:, [0, 2]] <= w).all() and (boxes.xyxy[:, [1, 3]] <= h).all()
    )
    assert ((boxes.scores >= 0) & (boxes.scores <= 1)).all()


def test_detector_source(tmp_path: Path, detector_state: dict[str, torch.Tensor]) -> None:
    weights = tmp_path / "detector.pt"
    torch.save(detector_state, weights)
    photo = _photo(tmp_path)
    rgb = np.asarray(Image.open(photo), dtype=np.float32) / 255.0
    source = detector_source(DETECTOR, weights, min_score=0.0)
    assert isinstance(source, BoxSource) and DETECTOR in source.description
    boxes = source.boxes_for(photo, (H, W), rgb)
    _check_valid(boxes, H, W)
    assert len(boxes) > 0  # a random head scores every class about 1/91 > 0
    again = source.boxes_for(photo, (H, W))  # read from disk: the same photo
    np.testing.assert_allclose(again.xyxy, boxes.xyxy, atol=1e-4)
    # the detector sees lightness only: the photo and its gray version (same L*, a* = b* = 0) give one result
    from tinct.color.lab import lab_to_rgb, rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))
    lab[1:] = 0.0
    gray = lab_to_rgb(lab, clip=True).permute(1, 2, 0).numpy()
    assert np.abs(gray - rgb).max() > 0.2  # a colourful photo
    from_gray = source.boxes_for(photo, (H, W), gray)
    np.testing.assert_allclose(from_gray.xyxy, boxes.xyxy, atol=1e-3)
    np.testing.assert_allclose(from_gray.scores, boxes.scores, atol=1e-4)
    with pytest.raises(ShapeError):
        source.boxes_for(photo, (H, W), rgb[:, :-1])
    with pytest.raises(TypeCheckError, match="floats"):
        source.boxes_for(photo, (H, W), (rgb * 255).astype(np.uint8))
    with pytest.raises(DataError, match=r"gone\.png"):
        source.boxes_for(tmp_path / "gone.png", (H, W))


def test_detector_weight_layouts(tmp_path: Path, detector_state: dict[str, torch.Tensor]) -> None:
    photo = _photo(tmp_path)
    wrapped = {"model": {f"module.model.{k}": v for k, v in detector_state.items()}, "epoch": torch.tensor(3)}
    frozen = {k: v for k, v in detector_state.items() if not k.endswith("num_batches_tracked")}
    for name, blob in (("wrapped", wrapped), ("frozen", frozen), ("state_dict", {"state_dict": frozen})):
        torch.save(blob, tmp_path / f"{name}.pt")
        boxes = detector_source(DETECTOR, tmp_path / f"{name}.pt").boxes_for(photo, (H, W))
        _check_valid(boxes, H, W)
        assert (boxes.scores > MIN_SCORE).all()  # the detector's own threshold defaults to the paper's

    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    three = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=3)
    torch.save(three.state_dict(), tmp_path / "three.pt")
    boxes = detector_source(DETECTOR, tmp_path / "three.pt", min_score=0.0).boxes_for(photo, (H, W))
    assert set(boxes.labels.tolist()) <= {1, 2}


def test_detector_bad_input(tmp_path: Path, detector_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ConfigError, match=r"valid choices: .*fasterrcnn_resnet50_fpn"):
        detector_source("yolov8", tmp_path / "w.pt")
    with pytest.raises(ConfigError, match="min_score"):
        detector_source(DETECTOR, tmp_path / "w.pt", min_score=1.0)
    with pytest.raises(ConfigError, match="device"):
        detector_source(DETECTOR, tmp_path / "w.pt", device="nonsense")
    with pytest.raises(DataError, match=r"w\.pt: detector weights file not found"):
        detector_source(DETECTOR, tmp_path / "w.pt")
    garbage = _write(tmp_path / "garbage.pt", "not a checkpoint")
    with pytest.raises(DataError, match=r"garbage\.pt: cannot load detector weights safely") as err:
        detector_source(DETECTOR, garbage)
    assert "\n" not in str(err.value)
    torch.save(torch.nn.Linear(2, 3).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(DataError, match=r"linear\.pt: does not fit detector .* missing .* 2 unexpected"):
        detector_source(DETECTOR, tmp_path / "linear.pt")
    partial = dict(list(detector_state.items())[5:])
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(DataError, match=r"partial\.pt: does not fit detector .*tensors 5 missing"):
        detector_source(DETECTOR, tmp_path / "partial.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match=r"list\.pt: expected a state dict"):
        detector_source(DETECTOR, tmp_path / "list.pt")


def test_detectors_are_torchvision_builders() -> None:
    from torchvision.models import detection as tv_detection
    from torchvision.models import get_model_builder, list_models

    available = set(list_models(module=tv_detection))
    for name in DETECTORS:
        assert name in available and callable(get_model_builder(name))
    wanted = {
        "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
        "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
        "retinanet_resnet50_fpn_v2", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
        "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large",
    }  # fmt: skip
    assert wanted <= set(DETECTORS)
