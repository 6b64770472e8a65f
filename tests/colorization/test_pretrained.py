"""The colorizer shipped inside the package: size, model card, and that its recipe still builds it."""

from pathlib import Path

import torch

from tinct.colorization.colorize import evaluate_colorization, load_colorizer
from tinct.colorization.pretrained import DEFAULT_COLORIZER
from tinct.colorization.task import ColorizationTask
from tinct.engine import load_config

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "colorization" / "eccv16_photos.yaml"


def test_weights_file_and_card() -> None:
    path = DEFAULT_COLORIZER.path()
    assert path.stat().st_size <= 20 * 2**20
    card = DEFAULT_COLORIZER.card()
    assert any("tinct train configs/colorization/eccv16_photos.yaml" in step for step in card["recipe"])
    metrics = card["test_metrics"]
    for key in ("auc_raw", "auc_rebalanced", "psnr", "colorfulness"):
        assert metrics[key] == metrics["model"][key] and key in metrics["gray"]
    assert metrics["auc_rebalanced"] > metrics["gray"]["auc_rebalanced"]


def test_recipe_config_builds_the_shipped_architecture() -> None:
    cfg = load_config(RECIPE)
    net = ColorizationTask(cfg).net  # type: ignore[arg-type]
    shipped = torch.load(DEFAULT_COLORIZER.path(), weights_only=True)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in shipped["state_dict"].items()} == expected
    assert shipped["config"]["model"] == cfg.model.model_dump(mode="json")
    for key in ("l_cent", "l_norm"):
        assert shipped["config"]["data"][key] == getattr(cfg.data, key)


def test_shipped_colorizer_colours_a_sample_photo(tmp_path: Path) -> None:
    from tinct.colorization.photos import skimage_photos

    _, info = load_colorizer()
    assert info["source"] == f"shipped:{DEFAULT_COLORIZER.name}"
    photo = [p for p in skimage_photos() if p.name == "coffee.png"]
    m = evaluate_colorization(None, photo, None, progress=False)
    assert m["colorfulness"] > 5 * max(m["gray"]["colorfulness"], 1.0)
