"""The colorizer shipped inside the package: size, model card, and that its recipe still builds it."""

from pathlib import Path

import pytest
import torch

from tinct.colorization.colorize import evaluate_colorization, load_colorizer
from tinct.colorization.pretrained import (
    DEFAULT_COLORIZER,
    ECCV16_COLORIZER,
    INSTANCE_COLORIZER,
    SIGGRAPH17_COLORIZER,
    PretrainedWeights,
)
from tinct.engine import load_config
from tinct.engine.task import TASKS

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "colorization"
# Each weights file shipped in the package and the recipe (or the last stage's recipe) that made it.
SHIPPED = [
    (ECCV16_COLORIZER, CONFIGS / "eccv16_photos.yaml"),
    (SIGGRAPH17_COLORIZER, CONFIGS / "siggraph17_photos_rebalanced.yaml"),
    (INSTANCE_COLORIZER, CONFIGS / "instance_fusion.yaml"),
]


@pytest.mark.parametrize(("weights", "recipe"), SHIPPED, ids=[w.name for w, _ in SHIPPED])
def test_weights_file_and_card(weights: PretrainedWeights, recipe: Path) -> None:
    path = weights.path()
    assert path.stat().st_size <= 25 * 2**20
    card = weights.card()
    assert any(f"configs/colorization/{recipe.name}" in step for step in card["recipe"])
    metrics = card["test_metrics"]
    for key in ("auc_raw", "auc_rebalanced", "psnr", "colorfulness"):
        assert metrics[key] == metrics["model"][key] and key in metrics["gray"]


@pytest.mark.parametrize(("weights", "recipe"), SHIPPED, ids=[w.name for w, _ in SHIPPED])
def test_recipe_config_builds_the_shipped_architecture(weights: PretrainedWeights, recipe: Path) -> None:
    cfg = load_config(recipe)
    net = TASKS.get(cfg.task)(cfg).net
    shipped = torch.load(weights.path(), weights_only=True)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in shipped["state_dict"].items()} == expected
    model = cfg.model.model_dump(mode="json")
    # The recipe as shipped; fields added to the config since then must hold their defaults there.
    defaults = type(cfg.model)().model_dump(mode="json")
    for key, value in model.items():
        if key in ("init", "instance_init"):  # where the stages started from: paths of the machine
            continue
        assert shipped["config"]["model"].get(key, defaults.get(key)) == value, key
    for key in ("l_cent", "l_norm"):
        assert shipped["config"]["data"][key] == getattr(cfg.data, key)


def test_shipped_colorizer_colours_a_sample_photo(tmp_path: Path) -> None:
    from tinct.colorization.photos import skimage_photos

    _, info = load_colorizer()
    assert info["source"] == f"shipped:{DEFAULT_COLORIZER.name}"
    photo = [p for p in skimage_photos() if p.name == "coffee.png"]
    m = evaluate_colorization(None, photo, None, progress=False)
    assert m["colorfulness"] > 5 * max(m["gray"]["colorfulness"], 1.0)
