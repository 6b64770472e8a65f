"""``tinct quickstart``'s colour-core checks: each passes on tinct as it is and fails when the value it checks
is wrong (the function under check is replaced by a subtly broken one), so none holds by construction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import tinct.cli.quickstart as qs
import tinct.color.difference
import tinct.color.lab
import tinct.color.quantize


@pytest.fixture(scope="module")
def checks() -> dict[str, dict[str, Any]]:
    return qs.colour_core_check()


def test_all_checks_pass_and_name_their_source(checks: dict[str, dict[str, Any]]) -> None:
    assert len(checks) == 7
    for name, c in checks.items():
        assert c["ok"] is True, (name, c)
        assert c["source"], name
        if "tolerance" in c:
            assert 0 <= c["value"] < c["tolerance"], name
    bins = checks["ab_bins_cover_the_srgb_gamut"]["value"]
    # the sRGB gamut reaches 261 of the release's 313 bins (colour-science 0.4.x, 65^3 sample)
    assert bins["tinct_bins"] == 313 and bins["srgb_bins_not_in_tinct"] == 0
    assert 255 <= bins["srgb_bins_recomputed"] <= 265
    assert bins["srgb_bins_recomputed"] + bins["tinct_bins_beyond_srgb"] == 313


def _without_bin(original: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def broken(*args: Any, **kwargs: Any) -> torch.Tensor:
        bins = original(*args, **kwargs)
        keep = (bins != torch.tensor([60.0, 60.0], dtype=bins.dtype)).any(1)  # an sRGB orange
        return bins[keep]

    return broken


def _scaled(original: Callable[..., torch.Tensor], factor: float) -> Callable[..., torch.Tensor]:
    return lambda *args, **kwargs: original(*args, **kwargs) * factor


BREAKAGES: dict[str, tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "ciede2000_vs_sharma_2005_max_abs_error": (
        tinct.color.difference, "delta_e_ciede2000", lambda f: _scaled(f, 1.001)
    ),
    "srgb_to_lab_vs_colour_science_max_abs_error": (
        tinct.color.lab, "rgb_to_lab", lambda f: _scaled(f, 1.0 + 1e-6)
    ),
    "srgb_lab_round_trip_max_abs_error": (tinct.color.lab, "lab_to_rgb", lambda f: _scaled(f, 1.0 + 1e-8)),
    "ab_bins_cover_the_srgb_gamut": (tinct.color.quantize, "ab_bins", _without_bin),
    "soft_encoding_vs_brute_force_max_abs_error": (
        tinct.color.quantize, "soft_encode_dense",
        lambda f: lambda ab, k=5, sigma=5.0, dim=-3: f(ab, k, sigma * 1.01, dim),
    ),
    "rebalancing_weights_vs_release_formula_max_rel_error": (
        tinct.color.quantize, "rebalancing_weights", lambda f: lambda prior, lam=0.5: f(prior, lam * 0.999)
    ),
    "ciede2000_gradient_finite_at_identical_inputs": (
        tinct.color.difference, "delta_e_ciede2000",
        lambda f: lambda a, b, dim=-1: (a - b).square().sum(dim).sqrt(),  # the naive norm: NaN gradient at a = b
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_each_check_fails_when_its_value_is_wrong(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module, attr, breaker = BREAKAGES[name]
    monkeypatch.setattr(module, attr, breaker(getattr(module, attr)))
    checks = qs.colour_core_check()
    assert checks[name]["ok"] is False, checks[name]


def test_quickstart_stops_on_a_failed_check(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def failing(seed: int = 0) -> dict[str, dict[str, Any]]:
        return {"x": {"value": 1.0, "ok": False, "source": "test"}}

    monkeypatch.setattr(qs, "colour_core_check", failing)
    with pytest.raises(RuntimeError, match="colour core check failed"):
        qs.quickstart(tmp_path)
