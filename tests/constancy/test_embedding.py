"""Contrastive illuminant embedding: view construction, losses, the task, and short training runs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tinct.color.illuminant import angular_error
from tinct.constancy.embedding import (
    IlluminantEmbeddingTask,
    InfoNCELoss,
    TripletMarginLoss,
    embedding_distance,
    info_nce_loss,
    make_contrastive_views,
    make_triplets,
    triplet_margin_loss,
)
from tinct.constancy.mondrian import MondrianDataset
from tinct.constancy.task import IlluminantTask
from tinct.core.exceptions import ConfigError, ShapeError, UnknownNameError
from tinct.engine import RunDir, load_config, train
from tinct.engine.config import config_from_dict
from tinct.engine.task import TASKS
from tinct.nn.weights import load_weights
from tinct.spectral.locus import sample_illuminants

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "contrastive_pretrain.yaml"
TINY_MODEL = {"width": 4, "depth": 2, "embed_dim": 16, "projector_hidden": 16}


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Tiny convolutions gain nothing from threads, and on a busy 2-core machine two threads contend badly.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _batch(b: int = 6, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # dim scenes (at most 0.1 of saturation), so no relighting gain clips them and the gains stay exact
    images = 0.005 + 0.095 * torch.rand(b, 3, size, size, generator=g)
    return images, sample_illuminants(b, g)


def _gain_image(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """Per-channel gain of ``num / den`` after checking it is constant over the image."""
    ratio = num / den
    gain = ratio.mean(dim=(-2, -1))
    torch.testing.assert_close(ratio, gain[..., None, None].expand_as(ratio), rtol=1e-5, atol=0)
    return gain


# -- view construction ------------------------------------------------------------------------------
@pytest.mark.parametrize("b", [2, 3, 7])
def test_positive_is_another_scene_under_the_anchor_illuminant(b: int) -> None:
    images, illum = _batch(b)
    for seed in range(5):
        t = make_triplets(images, illum, generator=torch.Generator().manual_seed(seed))
        src = t["positive_scene_index"]
        assert sorted(src.tolist()) == list(range(b)) and (src != torch.arange(b)).all()
        assert torch.equal(t["anchor"], images) and torch.equal(t["anchor_illuminant"], illum)
        # The positive is the source scene times constant gains; those gains carry its label onto L_a.
        implied = illum[src] * _gain_image(t["positive"], images[src])
        assert angular_error(implied, illum).max() < 1e-4


@pytest.mark.parametrize("min_angle", [0.0, 3.0, 10.0])
def test_negative_is_the_anchor_scene_under_another_illuminant(min_angle: float) -> None:
    images, illum = _batch(8, seed=1)
    t = make_triplets(images, illum, generator=torch.Generator().manual_seed(0), min_angle=min_angle)
    implied = illum * _gain_image(t["negative"], images)
    assert angular_error(implied, t["negative_illuminant"]).max() < 1e-4
    assert angular_error(t["negative_illuminant"], illum).min() >= max(min_angle, 1e-3)
    torch.testing.assert_close(t["negative_illuminant"].norm(dim=-1), torch.ones(8))


def test_negatives_come_from_the_batch_when_it_has_other_lights() -> None:
    images, illum = _batch(8, seed=2)
    v = make_contrastive_views(images, illum, 5, generator=torch.Generator().manual_seed(0))
    assert v["negatives"].shape == (8, 5, 3, 8, 8) and v["negative_illuminants"].shape == (8, 5, 3)
    # each negative illuminant is one of the batch's (unit norm), at least 3 degrees from the anchor's
    to_batch = angular_error(
        v["negative_illuminants"][:, :, None].expand(8, 5, 8, 3), illum.expand(8, 5, 8, 3)
    )
    assert (to_batch.min(dim=-1).values < 1e-3).all()
    assert (angular_error(v["negative_illuminants"], illum[:, None].expand(8, 5, 3)) >= 3.0).all()


@pytest.mark.parametrize("case", ["one_light", "single_image", "far"])
def test_negatives_fall_back_to_random_shifts(case: str) -> None:
    images, illum = _batch(4, seed=3)
    min_angle = 3.0
    if case == "one_light":
        illum = illum[:1].expand(4, 3).clone()
    elif case == "single_image":
        images, illum = images[:1], illum[:1]
    else:
        min_angle = 45.0  # no batch illuminant is that far from another
        images = images * 1e-3  # lights 45-180 degrees away need gains near 100: keep them unclipped
    v = make_contrastive_views(
        images, illum, 3, generator=torch.Generator().manual_seed(0), min_angle=min_angle
    )
    b = images.shape[0]
    neg = v["negative_illuminants"]
    assert (neg > 0).all()
    angles = angular_error(neg, illum[:, None].expand(b, 3, 3))
    assert (angles >= min_angle).all() and torch.isfinite(neg).all()
    if case != "far":  # aimed at 1 to 4 times min_angle
        assert (angles <= 4 * min_angle + 1e-3).all()
    implied = illum[:, None] * _gain_image(v["negatives"], images[:, None].expand_as(v["negatives"]))
    assert angular_error(implied, neg).max() < 1e-4
    if case == "single_image":
        assert v["positive_scene_index"].tolist() == [0]


def test_views_are_reproducible_and_checked() -> None:
    images, illum = _batch(5)
    a = make_triplets(images, illum, generator=torch.Generator().manual_seed(4))
    b = make_triplets(images, illum, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ShapeError):
        make_triplets(images[:, :2], illum)
    with pytest.raises(ShapeError):
        make_triplets(images, illum[:4])
    with pytest.raises(ValueError, match="n_negatives"):
        make_contrastive_views(images, illum, 0)
    with pytest.raises(ValueError, match="min_angle"):
        make_triplets(images, illum, min_angle=50.0)


# -- losses -----------------------------------------------------------------------------------------
A, P, N = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]]), torch.tensor([[0.0, 1.0]])


def test_distances_by_hand() -> None:
    # cosine: 1 - 0.6 = 0.4 and 1 - 0 = 1; l2: sqrt(0.4^2 + 0.8^2) = sqrt(0.8), sqrt(2)
    torch.testing.assert_close(embedding_distance(A, P), torch.tensor([0.4]))
    torch.testing.assert_close(embedding_distance(A, N), torch.tensor([1.0]))
    torch.testing.assert_close(embedding_distance(A, P, "l2"), torch.tensor([math.sqrt(0.8)]))
    torch.testing.assert_close(embedding_distance(A, N, "l2"), torch.tensor([math.sqrt(2.0)]))
    # between unit vectors, l2 = sqrt(2 * cosine distance)
    u = F.normalize(torch.randn(10, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    v = u.roll(1, 0)
    torch.testing.assert_close(embedding_distance(u, v, "l2"), (2 * embedding_distance(u, v)).sqrt())
    with pytest.raises(UnknownNameError, match="cosine"):
        embedding_distance(A, P, "manhattan")


def test_triplet_loss_by_hand() -> None:
    # cosine: d(a,p) = 0.4, d(a,n) = 1.0
    assert triplet_margin_loss(A, P, N, margin=0.2).item() == 0.0  # 0.4 + 0.2 <= 1
    assert triplet_margin_loss(A, P, N, margin=0.6).item() == pytest.approx(0.0, abs=1e-7)  # boundary
    assert triplet_margin_loss(A, P, N, margin=0.7).item() == pytest.approx(0.1, abs=1e-6)
    assert triplet_margin_loss(A, N, P, margin=0.2).item() == pytest.approx(0.8, abs=1e-6)  # swapped
    # l2: sqrt(0.8) - sqrt(2) + 1 = 0.48022
    assert triplet_margin_loss(A, P, N, 1.0, "l2").item() == pytest.approx(0.480218, abs=1e-5)
    assert triplet_margin_loss(A, P, N, 0.5, "l2").item() == 0.0
    # reference: torch's triplet loss is the l2 variant
    g = torch.Generator().manual_seed(1)
    a, p, n = (F.normalize(torch.randn(16, 8, generator=g), dim=-1) for _ in range(3))
    ref = F.triplet_margin_loss(a, p, n, margin=0.5, eps=0.0)
    torch.testing.assert_close(triplet_margin_loss(a, p, n, 0.5, "l2"), ref)
    torch.testing.assert_close(TripletMarginLoss(0.5, "l2")(a, p, n), ref)
    per = triplet_margin_loss(a, p, n, 0.5, reduction="none")
    assert per.shape == (16,) and (per >= 0).all()
    with pytest.raises(ValueError, match="margin"):
        triplet_margin_loss(A, P, N, margin=-1.0)


def test_info_nce_by_hand() -> None:
    # logits -d / T = [-0.4, -1.0] / 0.5 -> loss = log(1 + exp(-1.2))
    loss = info_nce_loss(A, P, N[:, None], temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1.2)), abs=1e-6)
    g = torch.Generator().manual_seed(2)
    a, p = (
        F.normalize(torch.randn(6, 8, generator=g), dim=-1),
        F.normalize(torch.randn(6, 8, generator=g), dim=-1),
    )
    n = F.normalize(torch.randn(6, 4, 8, generator=g), dim=-1)
    cos = torch.cat([(a * p).sum(-1, keepdim=True), (a[:, None] * n).sum(-1)], dim=1) / 0.1
    ref = (torch.logsumexp(cos, dim=1) - cos[:, 0]).mean()  # the usual cos / T form
    torch.testing.assert_close(info_nce_loss(a, p, n, 0.1), ref)
    torch.testing.assert_close(InfoNCELoss(0.1)(a, p, n), ref)
    assert torch.isfinite(info_nce_loss(a, p, n, 0.1, "l2"))
    with pytest.raises(ShapeError):
        info_nce_loss(a, p, n[:3])


def test_gradients_float64_and_at_coincident_points(one_thread: None) -> None:
    g = torch.Generator().manual_seed(3)
    a, p, n = (torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    m = torch.randn(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    for distance in ("cosine", "l2"):
        assert torch.autograd.gradcheck(lambda x, y, d=distance: embedding_distance(x, y, d), (a, p))
        assert torch.autograd.gradcheck(
            lambda x, y, z, d=distance: triplet_margin_loss(x, y, z, 5.0, d), (a, p, n)
        )
        assert torch.autograd.gradcheck(lambda x, y, z, d=distance: info_nce_loss(x, y, z, 0.5, d), (a, p, m))
    x = torch.ones(2, 4, requires_grad=True)
    embedding_distance(x, x.detach().clone(), "l2").sum().backward()
    assert torch.isfinite(x.grad).all()


# -- the task ---------------------------------------------------------------------------------------
def _cfg(**model: object):
    return config_from_dict(
        {
            "task": "illuminant_embedding",
            "data": {"n_train": 16, "n_val": 8, "n_test": 8, "size": 16, "batch_size": 8},
            "model": {**TINY_MODEL, **model},
            "trainer": {"max_epochs": 1, "progress": "none"},
        }
    )


def test_config_is_validated() -> None:
    assert TASKS.get("illuminant_embedding") is IlluminantEmbeddingTask
    cfg = config_from_dict({"task": "illuminant_embedding"})
    m = cfg.model
    assert (m.embed_dim, m.distance, m.loss, m.min_angle) == (128, "cosine", "triplet", 3.0)
    with pytest.raises(ConfigError, match=r"model\.loss"):
        config_from_dict({"task": "illuminant_embedding", "model": {"loss": "ntxent"}})
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        config_from_dict({"task": "illuminant_embedding", "model": {"hidden": 8}})


@pytest.mark.parametrize("space", ["linear", "log"])
def test_preprocessing_is_the_illuminant_task_s(space: str) -> None:
    ours = IlluminantEmbeddingTask(_cfg(input_space=space))
    theirs = IlluminantTask(config_from_dict({"task": "illuminant", "model": {"input_space": space}}))
    images, _ = _batch(3)
    mask = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.2
    torch.testing.assert_close(ours.preprocess(images, mask), theirs.preprocess(images, mask))


@pytest.mark.parametrize(
    ("loss", "distance"), [("triplet", "cosine"), ("triplet", "l2"), ("infonce", "cosine")]
)
def test_step_forward_backward(loss: str, distance: str, one_thread: None) -> None:
    torch.manual_seed(0)
    task = IlluminantEmbeddingTask(_cfg(loss=loss, distance=distance, n_negatives=3, margin=5.0))
    images, illum = _batch(4, size=16)
    batch = {"image": images, "illuminant": illum, "mask": torch.zeros(4, 1, 16, 16, dtype=torch.bool)}
    out = task.step(batch)
    assert out["output"].shape == (4, 16)
    torch.testing.assert_close(out["output"].norm(dim=-1), torch.ones(4))
    assert out["errors"].shape == (4,) and torch.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1
    out["loss"].backward()
    for name, p in task.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    task.eval()  # validation views are seeded, so val/loss compares across epochs
    with torch.no_grad():
        assert task.step(batch)["loss"] == task.step(batch)["loss"]


def test_tiny_run_checkpoint_initialises_the_illuminant_backbone(tmp_path: Path, one_thread: None) -> None:
    cfg = _cfg().model_copy(
        update={
            "trainer": _cfg().trainer.model_copy(update={"limit_train_batches": 2, "limit_val_batches": 1})
        }
    )
    m = train(cfg, run_dir=tmp_path / "run", verbose=False)
    assert math.isfinite(m["val/loss"]) and math.isfinite(m["test/loss"]) and 0 <= m["test/accuracy"] <= 1
    ckpt = RunDir(m["run_dir"]).checkpoint("best")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith("backbone.") for k in state)
    # the illuminant task's own init path (model.init = this run) and the generic weights loader
    model = {"width": 4, "depth": 2, "init": str(tmp_path / "run")}
    target = IlluminantTask(config_from_dict({"task": "illuminant", "model": model}))
    target.setup("fit")
    for k, v in target.backbone.state_dict().items():
        torch.testing.assert_close(v, state[f"backbone.{k}"])
    done = load_weights(target.backbone, ckpt, head=("projector.",))  # the checkpoint's projector head
    assert done.head and not done.missing and all(k.startswith("projector.") for k in done.head)


def test_shipped_config_trains_tiny(tmp_path: Path, one_thread: None) -> None:
    tiny = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    tiny += ["trainer.limit_test_batches=1", "trainer.progress=none", "data.n_train=16", "data.n_val=8"]
    tiny += ["data.n_test=8", "data.batch_size=8", f"output_dir={tmp_path}"]
    for loss in ("triplet", "infonce"):
        m = train(load_config(CONFIG, [*tiny, f"model.loss={loss}"]), verbose=False)
        assert math.isfinite(m["test/loss"]), loss


def test_embedding_learns_the_illuminant_not_the_scene(one_thread: None) -> None:
    """After ~1 s of training on Mondrians, held-out anchors are nearer their positive far above chance."""
    torch.manual_seed(0)
    task = IlluminantEmbeddingTask(_cfg(embed_dim=32, projector_hidden=32))

    def stack(ds: MondrianDataset) -> dict[str, torch.Tensor]:
        items = [ds[i] for i in range(len(ds))]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    train_set, held_out = stack(MondrianDataset(128, 16, seed=10)), stack(MondrianDataset(64, 16, seed=11))
    opt = torch.optim.AdamW(task.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randperm(128, generator=g)[:16]
        loss = task.step({k: v[idx] for k, v in train_set.items()})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    task.eval()
    with torch.no_grad():
        accuracy = task.step(held_out)["accuracy"].item()
    assert accuracy > 0.75  # chance is 0.5; measured 0.89


def test_contrastive_views_never_make_super_whites() -> None:
    # a bright scene relit towards a far bluer light: the blue gain is > 1, so the camera would clip
    images = torch.full((2, 3, 4, 4), 0.9)
    images[1] = 0.2
    illuminants = torch.tensor([[1.0, 1.0, 0.2], [0.2, 1.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    v = make_contrastive_views(images, illuminants, 2, generator=g, min_angle=10.0)
    for view in (v["positive"], v["negatives"]):
        assert float(view.max()) <= 1.0
        # a clipped pixel is masked (all channels zero), never a clipped but still coloured pixel
        hit = (view >= 1.0).any(dim=-3)
        assert not bool(hit.any())
    # each positive is the other (uniform) scene relit with a gain of 5 on one channel (0.2 * 5 and
    # 0.9 * 5 reach saturation): every pixel was clipped, so every pixel is masked
    assert bool((v["positive"] == 0).all())
