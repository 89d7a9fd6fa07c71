"""Downsampling keeps what a reader of the curve must see: extremes, ends, divergence."""

from __future__ import annotations

import numpy as np
import pytest

from api.services.downsample import downsample, minmax_indices


@pytest.mark.parametrize("n", [3, 10, 11, 999, 18_000, 18_001])
@pytest.mark.parametrize("max_points", [2, 3, 4, 7, 500])
def test_bounded_ordered_and_keeps_ends_and_extremes(n: int, max_points: int) -> None:
    values = np.random.default_rng(n).random(n)
    kept = minmax_indices(values, max_points)
    assert len(kept) <= max_points
    assert kept[0] == 0 and kept[-1] == n - 1
    assert np.all(np.diff(kept) > 0)
    if n <= max_points:
        assert len(kept) == n
    elif max_points >= 4:
        assert values.argmin() in kept and values.argmax() in kept


def test_a_spike_between_regular_samples_survives() -> None:
    steps = np.arange(10, 180_001, 10)
    values = np.exp(-np.arange(steps.size) / 4000)
    values[12_345] = 25.0  # every-36th-point sampling would step over this
    assert 12_345 % (steps.size // 500) != 0
    shown_steps, shown_values = downsample(steps, values, 500)
    assert len(shown_steps) <= 500
    assert shown_values.max() == 25.0 and steps[12_345] in shown_steps
    assert shown_values.min() == values.min()


def test_divergence_stays_visible() -> None:
    values = np.linspace(1.0, 0.5, 10_000)
    values[7_000:] = np.nan
    _, shown = downsample(np.arange(10_000), values, 100)
    assert np.isnan(shown).any()
    assert np.nanmin(shown) == values[6_999]  # the last finite minimum is kept too


def test_short_series_and_no_limit_pass_through() -> None:
    steps, values = np.arange(5), np.arange(5.0)
    assert downsample(steps, values, None)[0] is steps
    assert downsample(steps, values, 5)[1] is values
    with pytest.raises(ValueError, match="at least 2"):
        minmax_indices(values, 1)
