"""``tinct evaluate colorization`` on whole photos and inside object boxes: SSIM against scikit-image, box
statistics against hand computations on the masked pixels, whole = boxes when the boxes cover the photo,
the boxes an instance-aware colorizer is given, LPIPS / FID from local weights only (random backbones here),
and the note and errors when they are absent or wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from tinct.cli.main import main
from tinct.color.lab import lab_to_rgb, rgb_to_lab
from tinct.colorization.evaluation import LPIPS_FID_NOTE, evaluate_colorization
from tinct.colorization.metrics import grayscale_from_lab
from tinct.colorization.networks import ColorizationNet, Colorizer
from tinct.colorization.perceptual import load_fid, load_lpips, lpips_score, ssim_map
from tinct.core.exceptions import ConfigError, DataError

AB = (12.0, -7.0)


class ConstantAB:
    """A stub colorizer predicting one ab everywhere; records the keywords of each call."""

    temperature = 0.38

    def __init__(self, uses_boxes: bool = False) -> None:
        self.uses_boxes = uses_boxes
        self.calls: list[dict[str, Any]] = []

    def predict_ab(
        self, lightness: torch.Tensor, temperature: float | None = None, **kw: Any
    ) -> torch.Tensor:
        self.calls.append(kw)
        ab = torch.tensor(AB, dtype=lightness.dtype).view(1, 2, 1, 1)
        return ab.expand(1, 2, *lightness.shape[-2:]).clone()


def _photo(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """A smooth random colour photo of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = (np.random.default_rng(seed).random((5, 6, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(path), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return path


def _rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[..., ::-1].astype(np.float64) / 255.0


def _use(monkeypatch: pytest.MonkeyPatch, colorizer: Any) -> None:
    monkeypatch.setattr(
        "tinct.colorization.colorize.load_colorizer", lambda *a, **k: (colorizer, {"source": "stub"})
    )


def _boxes_file(path: Path, boxes: dict[str, list[list[float]]]) -> Path:
    path.write_text(json.dumps(boxes))
    return path


def _outputs(path: Path) -> dict[str, np.ndarray]:
    """The original, the constant-ab result and the grayscale baseline of a photo, H x W x 3 float64."""
    rgb = torch.from_numpy(_rgb(path).astype(np.float32)).permute(2, 0, 1)[None]
    lab = rgb_to_lab(rgb)
    model = lab_to_rgb(
        torch.cat([lab[:, :1], torch.tensor(AB).view(1, 2, 1, 1).expand(1, 2, *lab.shape[-2:])], 1), clip=True
    )
    return {
        "original": rgb[0].permute(1, 2, 0).double().numpy(),
        "model": model[0].permute(1, 2, 0).double().numpy(),
        "gray": grayscale_from_lab(lab)[0].permute(1, 2, 0).double().numpy(),
    }


def _colorfulness(pixels: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) of a set of sRGB pixels (n, 3) in [0, 1], written out from the paper."""
    r, g, b = (255.0 * pixels).T
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


@pytest.fixture(scope="module")
def tiny() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(ColorizationNet(width=0.125), infer_size=32).eval()


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torchvision

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("lpips") / "alexnet_random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)  # the whole model, as released
    return path


# -- SSIM ------------------------------------------------------------------------------------------------


def test_ssim_equals_scikit_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skimage.metrics import structural_similarity

    reference = {"channel_axis": -1, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    rng = np.random.default_rng(3)
    a = _rgb(_photo(tmp_path / "a.png", (70, 50)))
    b = np.clip(a + 0.08 * rng.standard_normal(a.shape), 0, 1)
    expected = structural_similarity(b, a, data_range=1, **reference)
    got = ssim_map(*(torch.from_numpy(x).permute(2, 0, 1)[None].float() for x in (b, a)))
    # Averaged over the pixels whose window lies inside the image, as scikit-image and the evaluation do.
    assert float(got[..., 5:-5, 5:-5].double().mean()) == pytest.approx(expected, abs=1e-4)

    # End to end: the JSON's SSIM of each output, against scikit-image on the same images.
    _use(monkeypatch, ConstantAB())
    photos = [_photo(tmp_path / "photos" / f"p{i}.png", (64, 48), seed=i) for i in range(2)]
    m = evaluate_colorization(None, tmp_path / "photos", None, progress=False)
    for name in ("model", "gray"):
        values = []
        for p in photos:
            o = _outputs(p)
            values.append(structural_similarity(o[name], o["original"], data_range=1, **reference))
        assert m[name]["ssim"] == pytest.approx(np.mean(values), abs=1e-3)
    assert m["ssim"] == m["model"]["ssim"] != m["gray"]["ssim"]


# -- whole photos, boxes ---------------------------------------------------------------------------------


def test_without_boxes_whole_is_the_top_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Colorizer
) -> None:
    _use(monkeypatch, tiny)
    for i in range(2):
        _photo(tmp_path / "photos" / f"p{i}.png", seed=i)
    m = evaluate_colorization(None, tmp_path / "photos", tmp_path / "m.json", progress=False)
    assert "boxes" not in m and json.loads((tmp_path / "m.json").read_text()) == m
    whole = m["whole"]
    assert whole["model"] == m["model"] and whole["gray"] == m["gray"]
    assert whole["original"] == m["original"] and whole["n_images"] == m["n_images"] == 2
    assert {k: m[k] for k in whole["model"]} == whole["model"]
    assert set(whole["model"]) == {"auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness"}


def test_box_metrics_are_those_of_the_box_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from skimage.metrics import structural_similarity

    _use(monkeypatch, ConstantAB())
    photos = [_photo(tmp_path / "photos" / f"p{i}.png", (64, 48), seed=i) for i in range(4)]
    boxes = _boxes_file(
        tmp_path / "boxes.json",
        {
            # The 0.5 box is dropped by the selection (score > 0.7); p0's box pixels: rows 10-29, cols 12-39.
            "p0.png": [[12, 10, 40, 30, 0.95], [0, 0, 64, 48, 0.5]],
            "p1.png": [[10, 12, 30, 36, 0.9], [20, 10, 50, 20, 0.8]],
            "p2.png": [[0, 0, 90, 48, 0.9]],  # outside the photo: its boxes are skipped, the photo kept
        },  # p3: no entry, no boxes
    )
    m = evaluate_colorization(None, tmp_path / "photos", None, progress=False, boxes=boxes, per_image=True)
    err = capsys.readouterr().err
    assert f"tinct: skipped boxes of {photos[2]}: " in err and len(err.strip().splitlines()) == 1
    b = m["boxes"]
    assert (b["n_images"], b["n_without_boxes"], b["skipped"]) == (2, 1, [str(photos[2])])
    assert m["n_images"] == m["whole"]["n_images"] == 4

    masks = [np.zeros((48, 64), bool) for _ in range(2)]
    masks[0][10:30, 12:40] = True
    masks[1][12:36, 10:30] = True
    masks[1][10:20, 20:50] = True
    assert b["pixel_fraction"] == pytest.approx(sum(k.sum() for k in masks) / (2 * 48 * 64))
    outs = [_outputs(p) for p in photos[:2]]
    for name in ("model", "gray"):
        mse = [np.mean((o[name][k] - o["original"][k]) ** 2) for o, k in zip(outs, masks, strict=True)]
        assert b[name]["psnr"] == pytest.approx(np.mean([10 * np.log10(1 / e) for e in mse]), rel=1e-5)
        cf = [_colorfulness(o[name][k]) for o, k in zip(outs, masks, strict=True)]
        assert b[name]["colorfulness"] == pytest.approx(np.mean(cf), rel=1e-4, abs=1e-3)
        # The boxes stay 10 pixels from the border: scikit-image's map (padded otherwise) agrees there.
        ssim = []
        for o, k in zip(outs, masks, strict=True):
            full = structural_similarity(
                o[name], o["original"], channel_axis=-1, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1, full=True,
            )[1]  # fmt: skip
            ssim.append(full[k].mean())
        assert b[name]["ssim"] == pytest.approx(np.mean(ssim), abs=1e-4)
    original_cf = [_colorfulness(o["original"][k]) for o, k in zip(outs, masks, strict=True)]
    assert b["original"]["colorfulness"] == pytest.approx(np.mean(original_cf), rel=1e-4)
    assert b["model"]["psnr"] != pytest.approx(m["model"]["psnr"], rel=1e-3)  # not the whole photos'

    # per_image: each photo's own metrics, whose means are the set's (AuC excepted: pooled over pixels).
    rows = m["per_image"]
    assert [r["image"] for r in rows] == [str(p) for p in photos]
    assert [r.get("n_boxes") for r in rows] == [1, 2, None, 0]
    assert [("boxes" in r, "boxes" in r["gray"]) for r in rows] == [(True, True)] * 2 + [(False, False)] * 2
    for key in ("psnr", "ssim", "colorfulness"):
        assert np.mean([r["whole"][key] for r in rows]) == pytest.approx(m["model"][key], rel=1e-9)
        assert np.mean([r["gray"]["whole"][key] for r in rows]) == pytest.approx(m["gray"][key], rel=1e-9)
        assert np.mean([r["boxes"][key] for r in rows[:2]]) == pytest.approx(b["model"][key], rel=1e-9)
    assert all(0 <= r["whole"]["auc_rebalanced"] <= 1 for r in rows)


@pytest.mark.parametrize("tiling", [[[0, 0, 64, 48, 0.9]], [[0, 0, 40, 48, 0.8], [30, 0, 64, 48, 0.99]]])
def test_boxes_covering_the_photos_give_the_whole_photo_metrics(
    tiling: list[list[float]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny: Colorizer,
    alexnet_file: Path,
) -> None:
    _use(monkeypatch, tiny)
    for i in range(2):
        _photo(tmp_path / "photos" / f"p{i}.png", (64, 48), seed=i)
    boxes = _boxes_file(tmp_path / "boxes.json", {f"p{i}.png": tiling for i in range(2)})
    m = evaluate_colorization(
        None, tmp_path / "photos", None, progress=False, boxes=boxes, lpips_weights=alexnet_file
    )
    whole, inside = m["whole"], m["boxes"]
    assert inside["n_images"] == 2 and inside["pixel_fraction"] == 1.0
    for name in ("model", "gray"):
        assert (
            set(inside[name])
            == set(whole[name])
            == {"auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness", "lpips"}
        )
        for key, value in whole[name].items():
            # LPIPS inside boxes is the mean of its upsampled map, the whole photo's the mean of each layer's.
            assert inside[name][key] == pytest.approx(value, rel=2e-2 if key == "lpips" else 1e-5), (
                name,
                key,
            )
    assert inside["original"]["colorfulness"] == pytest.approx(whole["original"]["colorfulness"], rel=1e-5)


def test_instance_aware_colorizer_gets_the_selected_boxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = [_photo(tmp_path / "photos" / f"p{i}.png", (64, 48), seed=i) for i in range(3)]
    many = [[i, i, 20 + i, 20 + i, 0.71 + 0.01 * i] for i in range(10)]  # 10 above 0.7: the best 8 are kept
    boxes = _boxes_file(
        tmp_path / "boxes.json", {"p0.png": [[3.5, 2, 40.25, 30, 0.9], [0, 0, 9, 9, 0.3]], "p1.png": many}
    )
    instance = ConstantAB(uses_boxes=True)
    _use(monkeypatch, instance)
    evaluate_colorization(None, tmp_path / "photos", None, progress=False, boxes=boxes)
    given = [c["boxes"] for c in instance.calls]
    assert len(given) == len(photos) and all(isinstance(g, torch.Tensor) for g in given)
    assert given[0].tolist() == [[3.5, 2.0, 40.25, 30.0]]  # the photo's pixels, the 0.3 box dropped
    assert given[1].tolist() == [box[:4] for box in many[::-1][:8]]  # best first, at most 8
    assert given[2].shape == (0, 4)  # no entry: no boxes

    plain = ConstantAB()  # not instance-aware: never given boxes
    _use(monkeypatch, plain)
    evaluate_colorization(None, tmp_path / "photos", None, progress=False, boxes=boxes)
    assert plain.calls == [{}] * 3
    instance.calls.clear()  # instance-aware without a box source: whole photos only
    _use(monkeypatch, instance)
    evaluate_colorization(None, tmp_path / "photos", None, progress=False)
    assert instance.calls == [{}] * 3


# -- LPIPS and FID ---------------------------------------------------------------------------------------


def test_lpips_from_local_backbone_weights(tmp_path: Path, alexnet_file: Path) -> None:
    import torchvision

    lpips = load_lpips(alexnet_file)
    assert lpips.pnet_type == "alex"
    features = torchvision.models.alexnet(weights=None).features  # a features-only file works too
    features.load_state_dict(
        {
            k.removeprefix("features."): v
            for k, v in torch.load(alexnet_file).items()
            if k.startswith("features.")
        }
    )
    torch.save(features.state_dict(), tmp_path / "features.pth")
    same = load_lpips(tmp_path / "features.pth")
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 3, 40, 52, generator=g), torch.rand(1, 3, 40, 52, generator=g)
    with torch.no_grad():
        score, spatial = lpips_score(lpips, x, y, spatial=True)
        reference = float(lpips(x, y, normalize=True).squeeze())  # torchmetrics' own forward
    assert score == pytest.approx(reference, rel=1e-5) and score > 0
    assert lpips_score(same, x, y)[0] == pytest.approx(score, rel=1e-6)
    assert spatial is not None and spatial.shape == (1, 1, 40, 52)
    assert float(spatial.mean()) == pytest.approx(score, rel=2e-2)
    assert lpips_score(lpips, x, x)[0] == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised FID Inception state dict (torch-fidelity's architecture, nothing downloaded)."""
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Random(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:  # keep the random initialisation
            return None

    folder = tmp_path_factory.mktemp("fid")
    torch.save({}, folder / "empty.pth")
    torch.manual_seed(2)
    net = Random("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(folder / "empty.pth"))
    torch.save(net.state_dict(), folder / "inception_random.pth")
    return folder / "inception_random.pth"


def test_fid_from_local_inception_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Colorizer, inception_file: Path
) -> None:
    _use(monkeypatch, tiny)
    for i in range(2):
        _photo(tmp_path / "photos" / f"p{i}.png", seed=i)
    boxes = _boxes_file(tmp_path / "boxes.json", {"p0.png": [[5, 5, 30, 30, 0.9]]})
    m = evaluate_colorization(
        None, tmp_path / "photos", None, progress=False, fid_weights=inception_file, boxes=boxes
    )
    for name in ("model", "gray"):
        assert np.isfinite(m["whole"][name]["fid"]) and m["whole"][name]["fid"] >= -1e-6
        assert "fid" not in m["boxes"][name] and "lpips" not in m[name]  # FID: whole photos only
    assert m["fid"] == m["whole"]["model"]["fid"]


def test_without_weights_the_cli_prints_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny: Colorizer
) -> None:
    _use(monkeypatch, tiny)
    _photo(tmp_path / "photos" / "p0.png")
    boxes = _boxes_file(tmp_path / "boxes.json", {"p0.png": [[5, 5, 30, 30, 0.9]]})
    out = tmp_path / "m.json"
    argv = [
        "evaluate",
        "colorization",
        "--data",
        str(tmp_path / "photos"),
        "--out",
        str(out),
        "--boxes",
        str(boxes),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [LPIPS_FID_NOTE]
    assert "model, in boxes" in captured.out and "ssim" in captured.out
    saved = json.loads(out.read_text())
    assert {"lpips", "fid"}.isdisjoint(saved) and {"lpips", "fid"}.isdisjoint(saved["gray"])
    assert saved["boxes"]["n_images"] == 1


def test_bad_weight_files_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model is loaded only after the weights are checked")

    monkeypatch.setattr("tinct.colorization.colorize.load_colorizer", never)
    photos = _photo(tmp_path / "photos" / "p0.png").parent
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    other = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    cases = [
        (tmp_path / "missing.pth", "not found"),
        (garbage, "cannot load LPIPS backbone weights"),
        (other, "not torchvision AlexNet or VGG-16 weights"),
    ]
    for path, message in cases:
        with pytest.raises(DataError, match=message) as info:
            evaluate_colorization(None, photos, None, progress=False, lpips_weights=path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install torch-fidelity"):
            load_fid(garbage)
    else:
        for path, message in [
            (garbage, "cannot load FID Inception weights"),
            (other, "not the FID Inception weights"),
        ]:
            with pytest.raises(DataError, match=message) as info:
                evaluate_colorization(None, photos, None, progress=False, fid_weights=path)
            assert str(path) in str(info.value) and "\n" not in str(info.value)
    # The CLI reports it in one line and exits 2, as every bad input.
    assert main(["evaluate", "colorization", "--data", str(photos), "--lpips-weights", str(garbage)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(garbage) in err[0]
