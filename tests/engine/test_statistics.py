import numpy as np
import pytest

from tinct.engine.statistics import error_statistics


def test_hand_computed_eight() -> None:
    # sorted: 1..8; Q1 = 2.75, Q2 = 4.5, Q3 = 6.25 (linear interpolation); best25 = mean(1, 2); worst25 = mean(7, 8)
    s = error_statistics([8, 3, 1, 7, 2, 6, 5, 4])
    assert s["mean"] == 4.5 and s["median"] == 4.5
    assert s["trimean"] == pytest.approx((2.75 + 2 * 4.5 + 6.25) / 4)
    assert s["best25"] == 1.5 and s["worst25"] == 7.5 and s["max"] == 8 and s["n"] == 8


def test_matches_fc4_convention_on_odd_n() -> None:
    # FC4's evaluation: best = mean(e[:int(0.25 n)]), worst = mean(e[int(0.75 n):])
    e = np.sort(np.random.default_rng(0).gamma(2.0, 1.5, size=101))
    s = error_statistics(e)
    assert s["best25"] == pytest.approx(e[:25].mean())
    assert s["worst25"] == pytest.approx(e[75:].mean())
    q1, q2, q3 = np.percentile(e, [25, 50, 75])
    assert s["trimean"] == pytest.approx(0.25 * (q1 + 2 * q2 + q3))


def test_small_and_bad() -> None:
    assert error_statistics([2.0])["best25"] == 2.0
    with pytest.raises(ValueError, match="no errors"):
        error_statistics([])
    with pytest.raises(ValueError, match="NaN"):
        error_statistics([1.0, float("nan")])
