"""Tests of FFCC (tinct.constancy.ffcc) by its properties, on synthetic sets with known answers, and on Cube+.

Properties: the histogram is a log-chroma histogram wrapped on a torus (a value and the value one period
later fall in the same cell); a per-channel gain of whole cells translates the histogram and, with the
bias off, the posterior and its von Mises mean (the filter is a convolution); the preconditioned regulariser
equals the paper's TV + L2 written in the histogram domain (Parseval); the von Mises fit recovers a wrapped
Gaussian's mean and covariance across the wrap; de-aliasing by Gray World recovers an illuminant one whole
period away. Learning: a set whose answer is known exactly (uniform grey scenes) is solved to within a
cell, and on random-surface scenes FFCC beats Gray World. Real data: the held-out error on Cube+'s first
fold (trained on the others) is in the range of the published thumbnail-free figures.

The ensemble over shifted grids: the members' tori are offset by the fractions of a cell they are given, a
one-member ensemble is FFCC itself, the combination is the mean direction with the members' spread added to
the covariance, it learns a known answer, and it trains, resumes and exports through the illuminant task.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tinct.color.illuminant import angular_error
from tinct.constancy.classical import gray_world
from tinct.constancy.export import FFCCEnsembleGraph, export_illuminant_graph
from tinct.constancy.ffcc import FFCC, fit_von_mises, log_chroma, log_chroma_histograms, uv_to_rgb
from tinct.constancy.ffcc_ensemble import FFCCEnsemble, combine_estimates
from tinct.core.exceptions import ConfigError

H = 1.0 / 32.0


def scenes(n: int, size: int = 16, seed: int = 0, spread: float = 0.35) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-surface scenes under illuminants along a locus. The reflectances are log-normal around a
    greenish mean (as foliage-heavy sets are), so Gray World is biased and a learned estimator need not be."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g)
    light = torch.stack([0.45 + 0.4 * t, torch.ones(n), 0.95 - 0.5 * t + 0.1 * torch.rand(n, generator=g)], 1)
    tint = torch.tensor([0.8, 1.0, 0.65]).view(1, 3, 1, 1)
    refl = torch.exp(spread * torch.randn(n, 3, size, size, generator=g)) * 0.3 * tint
    return (refl * light[:, :, None, None]).clamp(0, 1), light


def test_log_chroma_round_trips_through_rgb() -> None:
    rgb = torch.tensor([[0.2, 0.5, 0.3], [1.0, 1.0, 1.0]])
    back = uv_to_rgb(log_chroma(rgb))
    assert torch.allclose(back, rgb / rgb.norm(dim=-1, keepdim=True), atol=1e-6)


def test_histogram_is_normalised_and_wraps_around_the_torus() -> None:
    origin = torch.zeros(2)
    # u = log(g/r): one pixel at u = 0.1, one at u = 0.1 + 2 (one period of 64 cells x 1/32 later)
    r = torch.tensor([math.exp(-0.1), math.exp(-2.1)])
    image = torch.stack([r, torch.ones(2), torch.ones(2)]).view(1, 3, 1, 2)
    hist = log_chroma_histograms(image, None, origin, 64, H, channels=1, min_intensity=0.0)
    assert hist.shape == (1, 1, 64, 64)
    assert hist.sum().item() == pytest.approx(1.0)
    cell = math.floor(0.1 / H)
    assert hist[0, 0, cell, 0].item() == pytest.approx(1.0)  # both pixels in the same cell


def test_masked_and_dark_pixels_are_not_counted() -> None:
    image = torch.full((1, 3, 4, 4), 0.5)
    image[0, :, 0, 0] = torch.tensor([0.9, 0.5, 0.1])  # another chroma, masked below
    image[0, :, 1, 1] = 1e-6  # dark: below min_intensity
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 0, 0] = True
    hist = log_chroma_histograms(image, mask, torch.zeros(2), 64, H, channels=1)
    assert hist.count_nonzero().item() == 1  # only the grey pixels remain


def test_a_gain_of_whole_cells_translates_histograms_and_posterior() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, 12, 12) * 0.8 + 0.1
    model = FFCC(channels=2, filter_tv=1.0, filter_l2=1.0)  # filters of order 1
    with torch.no_grad():
        model.filter_v.normal_()
        model.bias_v.zero_()
    du, dv = 5, -3  # cells
    gain = torch.tensor([math.exp(-du * H), 1.0, math.exp(-dv * H)]).view(1, 3, 1, 1)  # u = log(g/r) + du*H
    h0, h1 = model.histograms(image), model.histograms(image * gain)
    assert torch.allclose(torch.roll(h0, shifts=(du, dv), dims=(-2, -1)), h1, atol=1e-6)
    with torch.no_grad():
        l0, l1 = model.logits(h0), model.logits(h1)
        assert torch.allclose(torch.roll(l0, shifts=(du, dv), dims=(-2, -1)), l1, atol=1e-4)
        m0, _ = fit_von_mises(torch.softmax(l0.flatten(1), 1).view_as(l0))
        m1, _ = fit_von_mises(torch.softmax(l1.flatten(1), 1).view_as(l1))
    shift = torch.remainder(m1 - m0 + 32, 64) - 32
    assert torch.allclose(shift, torch.tensor([[du, dv]] * 2, dtype=shift.dtype), atol=1e-3)


def test_preconditioned_regulariser_is_the_papers_tv_plus_l2() -> None:
    torch.manual_seed(1)
    tv, l2 = 0.3, 0.05
    model = FFCC(bins=16, filter_tv=tv, filter_l2=l2, bias_tv=2.0, bias_l2=0.1)
    with torch.no_grad():
        model.filter_v.normal_()
        model.bias_v.normal_()

    def tv_l2(f: torch.Tensor, a: float, b: float) -> torch.Tensor:
        du = f - torch.roll(f, 1, dims=-2)
        dv = f - torch.roll(f, 1, dims=-1)
        return a * (du.square().sum() + dv.square().sum()) + b * f.square().sum()

    direct = tv_l2(model.filters, tv, l2) + tv_l2(model.bias, 2.0, 0.1)
    assert model.regulariser().item() == pytest.approx(direct.item(), rel=1e-4)


def test_von_mises_fit_recovers_a_wrapped_gaussian_across_the_edge() -> None:
    n = 64
    idx = torch.arange(n, dtype=torch.float64)
    mean = torch.tensor([63.2, 10.0], dtype=torch.float64)
    sd = torch.tensor([2.0, 3.0], dtype=torch.float64)
    du = torch.remainder(idx - mean[0] + n / 2, n) - n / 2
    dv = torch.remainder(idx - mean[1] + n / 2, n) - n / 2
    p = torch.exp(-0.5 * (du[:, None] / sd[0]) ** 2 - 0.5 * (dv[None, :] / sd[1]) ** 2)
    p = (p / p.sum()).unsqueeze(0)
    mu, cov = fit_von_mises(p)
    assert torch.allclose(mu[0], mean, atol=0.05)
    assert cov[0, 0, 0].item() == pytest.approx(4.0 + 1 / 12, rel=0.05)
    assert cov[0, 1, 1].item() == pytest.approx(9.0 + 1 / 12, rel=0.05)
    assert abs(cov[0, 0, 1].item()) < 1e-6


def test_known_answer_grey_scenes_are_solved_within_a_cell() -> None:
    g = torch.Generator().manual_seed(3)
    n = 160
    light = torch.rand(n, 3, generator=g) * 0.6 + 0.3
    images = (
        light[:, :, None, None].expand(n, 3, 8, 8) * 0.8
    )  # a single grey surface: the answer is the pixel
    model = FFCC(bins=32, bin_size=1 / 16, channels=1).fit(images[:120], None, light[:120])
    with torch.no_grad():
        err = angular_error(model(images[120:]), light[120:], dim=-1)
    assert err.max().item() < 1.5  # one cell of 1/16 log units is about 1.5 degrees at most
    assert err.mean().item() < 0.8


def test_ffcc_beats_gray_world_on_random_surface_scenes() -> None:
    images, light = scenes(400, seed=4)
    start = time.perf_counter()
    model = FFCC().fit(images[:300], None, light[:300])
    assert time.perf_counter() - start < 60
    with torch.no_grad():
        est = model.estimate(images[300:])
    ffcc = angular_error(est.rgb, light[300:], dim=-1)
    gw = angular_error(torch.stack([gray_world(x) for x in images[300:]]), light[300:], dim=-1)
    assert ffcc.mean() < 0.8 * gw.mean()
    assert torch.isfinite(est.uncertainty).all() and (est.uncertainty > 0).all()
    assert est.posterior.shape == (100, 64, 64)
    assert torch.allclose(est.posterior.sum(dim=(-2, -1)), torch.ones(100), atol=1e-5)


def test_de_aliasing_picks_the_period_nearest_to_gray_world() -> None:
    g = torch.Generator().manual_seed(5)
    # training illuminants spanning 2.4 log units in u: more than the torus's period of 2
    uv = torch.stack([torch.rand(160, generator=g) * 2.4 - 1.2, torch.rand(160, generator=g) * 0.4 - 0.2], 1)
    light = uv_to_rgb(uv)
    images = (light / light.amax(1, keepdim=True))[:, :, None, None].expand(160, 3, 8, 8) * 0.8
    model = FFCC(bins=32, bin_size=1 / 16, channels=1).fit(images, None, light)
    ends = uv_to_rgb(torch.tensor([[1.1, 0.0], [-1.1, 0.1]]))  # each aliases onto the other end's side
    test = (ends / ends.amax(1, keepdim=True))[:, :, None, None].expand(2, 3, 8, 8) * 0.8
    with torch.no_grad():
        assert angular_error(model(test), ends, dim=-1).max().item() < 2.0


def test_de_aliasing_keeps_the_training_range_when_gray_world_is_far_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FFCC(bins=32, bin_size=1 / 16, channels=1)
    true_uv = torch.tensor([[0.3, 0.2]])
    cell = torch.floor((true_uv - model.origin) / model.bin_size).long()[0]

    def peaked(hist: torch.Tensor, spectrum: torch.Tensor | None = None) -> torch.Tensor:
        logits = torch.full((1, 32, 32), -50.0)
        logits[0, cell[0], cell[1]] = 0.0
        return logits

    monkeypatch.setattr(model, "logits", peaked)
    far_gray_world = true_uv + torch.tensor([[1.5, 0.0]])  # a scene of one dominant colour
    hist = torch.zeros(1, 1, 32, 32)
    # never centred (no training range): the paper's rule, the period nearest to Gray World
    assert model.estimate_from(hist, far_gray_world).uv[0, 0].item() == pytest.approx(2.3, abs=0.05)
    model.center_on(uv_to_rgb(torch.tensor([[-0.5, 0.0], [0.5, 0.3]])))  # trained on u in [-0.5, 0.5]
    cell = torch.floor((true_uv - model.origin) / model.bin_size).long()[0]
    assert model.estimate_from(hist, far_gray_world).uv[0, 0].item() == pytest.approx(0.3, abs=0.05)


def test_uncertainty_is_larger_for_ambiguous_images() -> None:
    images, light = scenes(300, seed=6)
    model = FFCC().fit(images, None, light)
    grey = light[:50, :, None, None].expand(50, 3, 16, 16) * 0.5  # one surface: no colour to mislead
    busy, _ = scenes(50, seed=7, spread=1.0)  # saturated random colours: ambiguous
    with torch.no_grad():
        assert model.estimate(busy).uncertainty.median() > model.estimate(grey).uncertainty.median()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="filter_l2"):
        FFCC(filter_l2=0.0)
    with pytest.raises(ConfigError, match="bins"):
        FFCC(bins=2)
    with pytest.raises(ConfigError, match="channels"):
        FFCC(channels=4)
    with pytest.raises(ValueError, match="illuminants"):
        FFCC().fit(torch.rand(3, 3, 8, 8), None, torch.rand(2, 3))


def test_state_dict_round_trips_the_torus_and_regularisers() -> None:
    images, light = scenes(60, seed=8)
    model = FFCC(filter_tv=1e-5).fit(images, None, light, iters=5, convex_iters=5)
    other = FFCC(filter_tv=1.0)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(other(images[:5]), model(images[:5]))


def test_cube_plus_first_fold(shared_file: Callable[[str], Path]) -> None:
    """Trained on folds 1-2 of Cube+ (folds.csv), tested once on fold 0: a sanity range, not a tuning."""
    root = shared_file("constancy/cube_plus_64")
    gt = pd.read_csv(root / "gt.csv").merge(pd.read_csv(root / "folds.csv"), on="image")
    x = torch.from_numpy(np.stack([np.load(root / n).astype(np.float32) for n in gt["image"]]))
    x = x.permute(0, 3, 1, 2).contiguous()
    mask = x.amax(1, keepdim=True) <= 0
    y = torch.tensor(gt[["r", "g", "b"]].to_numpy(), dtype=torch.float32)
    train = torch.from_numpy((gt["fold"] != 0).to_numpy(copy=True))
    start = time.perf_counter()
    model = FFCC().fit(x[train], mask[train], y[train])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        err = angular_error(model(x[~train], mask[~train]), y[~train], dim=-1)
    assert err.isfinite().all()
    assert err.mean().item() < 1.8 and err.median().item() < 1.1  # Gray World: about 3.6 / 2.5
    assert seconds < 120  # about 5 s alone on 2 cores


def _folder(root: Path, n: int = 24, folds: int = 3) -> Path:
    """A generic-layout folder of random-surface scenes with gt.csv and folds.csv."""
    images, light = scenes(n, size=12, seed=9)
    root.mkdir(parents=True)
    names = [f"s{i:02d}.npy" for i in range(n)]
    for name, image in zip(names, images, strict=True):
        np.save(root / name, (image / image.max()).permute(1, 2, 0).numpy().astype(np.float16))
    rgb = light.numpy()
    pd.DataFrame({"image": names, "r": rgb[:, 0], "g": rgb[:, 1], "b": rgb[:, 2]}).to_csv(
        root / "gt.csv", index=False
    )
    pd.DataFrame({"image": names, "fold": [i % folds for i in range(n)]}).to_csv(
        root / "folds.csv", index=False
    )
    return root


def test_baselines_train_ffcc_on_the_training_folds_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinct.constancy.baselines import run_baselines

    root = _folder(tmp_path / "data")
    gt = pd.read_csv(root / "gt.csv")
    folds = pd.read_csv(root / "folds.csv")["fold"].to_numpy()
    seen: list[np.ndarray] = []
    fit = FFCC.fit

    def spy(
        self: FFCC, images: torch.Tensor, masks: torch.Tensor, illuminants: torch.Tensor, **kw: int
    ) -> FFCC:
        seen.append(illuminants.numpy().copy())
        return fit(self, images, masks, illuminants, **kw)

    monkeypatch.setattr(FFCC, "fit", spy)
    stats = run_baselines(root, out=tmp_path / "out", methods=["gray_world", "ffcc"], progress=False)
    assert list(stats) == ["gray_world", "ffcc"]
    assert len(seen) == 3
    truth = gt[["r", "g", "b"]].to_numpy()
    truth = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    for k, used in enumerate(seen):
        used = used / np.linalg.norm(used, axis=1, keepdims=True)
        expected = truth[folds != k]
        assert used.shape == expected.shape and np.allclose(np.sort(used, 0), np.sort(expected, 0), atol=1e-6)
    import json

    details = json.loads((tmp_path / "out" / "baselines_details.json").read_text())["methods"]["ffcc"]
    assert len(details["per_image"]["uncertainty"]) == 24 and details["train_seconds"] > 0


def test_unknown_baseline_is_refused(tmp_path: Path) -> None:
    from tinct.constancy.baselines import run_baselines
    from tinct.core.exceptions import UnknownNameError

    with pytest.raises(UnknownNameError, match="ffcc"):
        run_baselines(_folder(tmp_path / "data"), methods=["fccc"], progress=False)


def test_tinct_train_and_crossval_run_ffcc(tmp_path: Path) -> None:
    from tinct.constancy.crossval import crossval
    from tinct.engine import load_config, train

    root = _folder(tmp_path / "data")
    config = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "ffcc.yaml"
    cfg = load_config(
        config, [f"data.root={root}", "data.fold=0", f"output_dir={tmp_path}", "trainer.progress=none"]
    )
    m = train(cfg, verbose=False)
    assert np.isfinite(m["test/angular_mean"]) and m["test/angular_mean"] < 10
    base = load_config(config, [f"data.root={root}", "trainer.progress=none"])
    stats = crossval(base, root, out=tmp_path / "cv", progress=False)
    assert stats["folds"] == 3 and stats["n"] == 24 and np.isfinite(stats["mean"])


def test_ffcc_config_refuses_backbone_fields() -> None:
    from pydantic import ValidationError

    from tinct.constancy.task import IlluminantModelConfig

    with pytest.raises(ValidationError, match="ffcc"):
        IlluminantModelConfig(estimator="ffcc", init="run")


def test_recipe_tunes_regularisation_on_validation_only(tmp_path: Path) -> None:
    from tinct.engine import load_config, train

    root = _folder(tmp_path / "data", n=30)
    config = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "thumbnails.yaml"
    common = [f"data.root={root}", "data.fold=0", f"output_dir={tmp_path}", "trainer.progress=none"]
    with pytest.raises(ConfigError, match="validation split"):  # val would be the held-out fold
        train(load_config(config, [*common, "data.val_fraction=0"]), verbose=False)
    cfg = load_config(config, [*common, "data.val_fraction=0.3", "model.ffcc.tune=[1, 1000]"])
    run = tmp_path / "run"
    m = train(cfg, run_dir=run, verbose=False)
    assert np.isfinite(m["test/angular_mean"])
    from tinct.engine.run_dir import RunDir, read_checkpoint

    state = read_checkpoint(RunDir(run).checkpoint("last"))["state_dict"]
    f = cfg.model.ffcc
    base = torch.tensor([f.filter_tv, f.filter_l2, f.bias_tv, f.bias_l2])
    weights = [v for k, v in state.items() if k.endswith("regularisers")]  # one per member of the ensemble
    assert len(weights) == cfg.model.ffcc.shifts**2
    ratio = weights[0] / base
    assert torch.allclose(ratio, torch.full((4,), float(ratio[0])), rtol=1e-4)
    assert float(ratio[0]) in (pytest.approx(1.0), pytest.approx(1000.0))
    assert all(torch.equal(w, weights[0]) for w in weights)  # every member got the chosen multiplier


def test_crossval_does_not_reuse_finished_folds_of_another_experiment(tmp_path: Path) -> None:
    from tinct.constancy.crossval import crossval
    from tinct.engine import load_config

    root = _folder(tmp_path / "data", n=12)
    config = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "ffcc.yaml"
    common = [f"data.root={root}", "trainer.progress=none", f"output_dir={tmp_path}", "trainer.max_epochs=1"]
    crossval(load_config(config, common), root, out=tmp_path / "cv", progress=False, figures=False)
    again = crossval(load_config(config, common), root, out=tmp_path / "cv", progress=False, figures=False)
    assert again["n"] == 12  # the same experiment: finished folds are read back
    with pytest.raises(ConfigError, match="different model section"):
        crossval(
            load_config(config, [*common, "model.ffcc.channels=1"]), root, out=tmp_path / "cv", progress=False
        )


# -- FFCC over shifted histogram grids (tinct.constancy.ffcc_ensemble, model.ffcc.shifts) --------------

LIGHTS = torch.tensor([[0.5, 1.0, 0.7], [0.7, 1.0, 0.4], [0.4, 1.0, 0.9]])


def test_members_tori_are_offset_by_their_fraction_of_a_cell() -> None:
    ens = FFCCEnsemble(shifts=3, bins=16, bin_size=0.0625)
    ens.center_on(LIGHTS)
    base = ens.members[0].origin
    for m in ens.members:
        expected = base + torch.tensor(m.offset) * 0.0625
        assert torch.allclose(m.origin, expected, atol=1e-6)
    assert sorted({m.offset for m in ens.members}) == [(i / 3, j / 3) for i in range(3) for j in range(3)]
    # the same centre as a single FFCC's, which is the unshifted member
    single = FFCC(bins=16, bin_size=0.0625)
    single.center_on(LIGHTS)
    assert torch.equal(single.origin, base)


def test_one_member_is_ffcc_itself() -> None:
    images, light = scenes(120, seed=7)
    single = FFCC(bins=32, bin_size=1 / 16).fit(images[:90], None, light[:90], iters=20, convex_iters=10)
    ens = FFCCEnsemble(shifts=1, bins=32, bin_size=1 / 16).fit(
        images[:90], None, light[:90], iters=20, convex_iters=10
    )
    with torch.no_grad():
        a, b = single.estimate(images[90:]), ens.estimate(images[90:])
    assert torch.allclose(a.rgb, b.rgb, atol=1e-6)
    assert torch.allclose(a.covariance, b.covariance, atol=1e-9)
    assert torch.allclose(a.uncertainty, b.uncertainty, atol=2e-3)  # degrees, through a float32 round trip


def test_combination_is_the_mean_direction_plus_the_members_spread() -> None:
    g = torch.Generator().manual_seed(0)
    uv = torch.randn(4, 5, 2, generator=g) * 0.2
    cov = torch.eye(2).expand(4, 5, 2, 2) * 1e-3
    mean, total = combine_estimates(uv, cov)
    # independent reference: the mean of the unit RGB vectors, its direction in log-chroma
    rgb = torch.stack([uv_to_rgb(u) for u in uv]).mean(0)
    assert torch.allclose(mean, log_chroma(rgb), atol=1e-6)
    spread = torch.stack([torch.cov((uv[:, i] - mean[i]).T, correction=0) for i in range(5)])
    # torch.cov centres on the members' own mean; the combination centres on the combined estimate
    centred = uv.mean(0) - mean
    assert torch.allclose(
        total, 1e-3 * torch.eye(2) + spread + centred[:, :, None] * centred[:, None, :], atol=1e-6
    )
    assert (torch.linalg.eigvalsh(total) >= 1e-3 - 1e-7).all()


def test_memberwise_lbfgs_trains_each_member_as_if_alone() -> None:
    import copy

    from tinct.constancy.ffcc_ensemble import MemberwiseLBFGS

    images, light = scenes(60, size=12, seed=11)
    ens = FFCCEnsemble(shifts=2, bins=16, bin_size=1 / 8)
    ens.center_on(light)
    alone = copy.deepcopy(ens)
    with torch.no_grad():
        hist = ens.histograms(images)
        spec = torch.fft.rfft2(hist)
    kw = {"lr": 1.0, "max_iter": 15, "history_size": 20, "line_search_fn": "strong_wolfe"}
    opt = MemberwiseLBFGS([list(m.parameters()) for m in ens.members], **kw)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ens.loss_from_histograms(hist, light, "convex", spec) + ens.regulariser()
        loss.backward()
        return loss

    opt.step(closure)
    for k, m in enumerate(alone.members):  # the reference: each member with its own L-BFGS on its own loss
        own = torch.optim.LBFGS(m.parameters(), **kw)

        def own_closure(m: FFCC = m, own: torch.optim.LBFGS = own, k: int = k) -> torch.Tensor:
            own.zero_grad()
            loss = m.loss_from_histograms(hist[k], light, "convex", spec[k]) + m.regulariser()
            loss.backward()
            return loss

        own.step(own_closure)
        assert float(m.filter_v.detach().abs().max()) > 0
        torch.testing.assert_close(ens.members[k].filter_v, m.filter_v, rtol=1e-3, atol=1e-5)
        torch.testing.assert_close(ens.members[k].bias_v, m.bias_v, rtol=1e-3, atol=1e-5)


def test_shifted_grids_learn_the_known_answer_of_grey_scenes() -> None:
    g = torch.Generator().manual_seed(3)
    n = 160
    light = torch.rand(n, 3, generator=g) * 0.6 + 0.3
    images = light[:, :, None, None].expand(n, 3, 8, 8) * 0.8  # one grey surface: the answer is the pixel
    ens = FFCCEnsemble(shifts=2, bins=32, bin_size=1 / 16, channels=1).fit(images[:120], None, light[:120])
    with torch.no_grad():
        err = angular_error(ens(images[120:]), light[120:], dim=-1)
    assert err.max().item() < 1.5 and err.mean().item() < 0.8


def test_task_trains_resumes_and_exports_an_ensemble(tmp_path: Path) -> None:
    from tinct.engine import load_config, train
    from tinct.engine.modelfile import load_model
    from tinct.nn.export import onnx_session, run_onnx

    root = _folder(tmp_path / "data", n=30)
    config = Path(__file__).resolve().parents[2] / "configs" / "constancy" / "ffcc.yaml"
    cfg = load_config(
        config,
        [f"data.root={root}", "data.fold=0", f"output_dir={tmp_path}", "trainer.progress=none",
         "model.ffcc.shifts=2", "model.ffcc.bins=32", "model.ffcc.bin_size=0.0625"],
    )  # fmt: skip
    run = tmp_path / "run"
    m = train(cfg, run_dir=run, verbose=False)
    assert np.isfinite(m["test/angular_mean"])
    task = load_model(run)
    assert isinstance(task.ffcc, FFCCEnsemble) and len(task.ffcc.members) == 4
    origins = torch.stack([mem.origin for mem in task.ffcc.members])
    assert len({tuple(o.tolist()) for o in origins}) == 4  # the offsets survived the checkpoint
    assert all(
        float(mem.filter_v.detach().abs().max()) > 0 for mem in task.ffcc.members
    )  # every member trained
    x = torch.rand(3, 3, 40, 56) * 0.8 + 0.05
    with torch.no_grad():
        expected = task.eval()(x)
        assert torch.allclose(FFCCEnsembleGraph(task.ffcc)(x), expected, atol=1e-5)
    exported = export_illuminant_graph(task, source="tiny")
    got = run_onnx(onnx_session(exported.data), {"image": x})[0]
    assert float((got - expected).abs().max()) <= 1e-4
