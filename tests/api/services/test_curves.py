"""Curve comparison: TensorBoard smoothing, alignment, spike-keeping downsampling, bands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from api.services.curves import align, downsample_aligned, group_bands, json_floats, tensorboard_ema


def _direct_ema(values: list[float], w: float) -> list[float]:
    """The debiased EMA written as the weighted average it is: weights w^(t-i) (1-w),
    normalised by their sum 1 - w^(t+1)."""
    out = []
    for t in range(len(values)):
        num = sum(w ** (t - i) * (1 - w) * values[i] for i in range(t + 1))
        out.append(num / (1 - w ** (t + 1)))
    return out


def test_ema_matches_the_direct_weighted_average() -> None:
    rng = np.random.default_rng(3)
    values = rng.random(50).tolist()
    smoothed = tensorboard_ema(values, 0.6)
    assert smoothed.tolist() == pytest.approx(_direct_ema(values, 0.6), rel=1e-12)
    # Debiasing: the first smoothed point is the first raw point, not 0.4 of it.
    assert smoothed[0] == pytest.approx(values[0])


def test_ema_skips_non_finite_points_and_keeps_trivial_cases() -> None:
    smoothed = tensorboard_ema([1.0, float("nan"), 3.0], 0.5)
    assert smoothed[0] == 1.0 and math.isnan(smoothed[1])
    # The NaN did not advance the average: the third point is the 2-point debiased EMA.
    assert smoothed[2] == pytest.approx((0.5 * 0.5 * 1.0 + 0.5 * 3.0) / (1 - 0.25))
    assert tensorboard_ema([2.0, 2.0, 2.0], 0.9).tolist() == [2.0, 2.0, 2.0]
    assert tensorboard_ema([1.0, 5.0], 0.0).tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match=r"0\.\.1"):
        tensorboard_ema([1.0], 1.5)


def _tensorboard_loop(values: list[float], w: float) -> list[float]:
    """TensorBoard's classicSmoothing, statement for statement."""
    last, accumulated, out = 0.0, 0, []
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * w + (1 - w) * value
        accumulated += 1
        out.append(last / (1 if w == 1 else 1 - w**accumulated))
    return out


@pytest.mark.parametrize("weight", [0.3, 0.6, 0.99, 1.0])
def test_ema_matches_tensorboards_loop_with_gaps(weight: float) -> None:
    rng = np.random.default_rng(11)
    values = rng.random(2000) * 3
    values[rng.random(2000) < 0.05] = np.nan
    values[17] = np.inf
    expected = _tensorboard_loop(values.tolist(), weight)
    assert tensorboard_ema(values, weight).tolist() == pytest.approx(
        expected, rel=1e-9, nan_ok=True
    )


def test_align_puts_every_curve_on_the_union_of_steps() -> None:
    aligned = align([([10, 20, 30], [1.0, 2.0, 3.0]), ([20, 40], [5.0, 6.0])])
    assert aligned.steps.tolist() == [10, 20, 30, 40]
    assert json_floats(aligned.values[0]) == [1.0, 2.0, 3.0, None]
    assert json_floats(aligned.values[1]) == [None, 5.0, None, 6.0]


def test_downsampling_keeps_shared_x_values_and_a_one_point_spike() -> None:
    steps = np.arange(1, 10_001) * 10
    calm = np.full(steps.size, 0.5)
    spiky = calm.copy()
    spiky[4321] = 9.0
    aligned = align([(steps, calm), (steps, spiky)])
    small, _, _ = downsample_aligned(aligned, 500)
    assert small.steps.size <= 500
    assert small.values.shape == (2, small.steps.size)
    assert np.all(np.diff(small.steps) > 0)
    assert small.values[1].max() == 9.0
    assert set(small.values[0].tolist()) == {0.5}
    # The x values are real logged steps of the source.
    assert set(small.steps.tolist()) <= set(steps.tolist())


def test_downsampling_is_a_no_op_below_the_limit() -> None:
    aligned = align([([1, 2, 3], [3.0, 2.0, 1.0])])
    small, low, high = downsample_aligned(aligned, 500)
    assert small is aligned and low is None and high is None


def test_seed_bands_mean_min_max_and_missing_points() -> None:
    aligned = align(
        [([1, 2, 3], [1.0, 2.0, 3.0]), ([1, 2, 3], [3.0, 4.0, 5.0]), ([1, 2], [10.0, 10.0])]
    )
    mean, low, high = group_bands(aligned, [[0, 1], [2], []])
    assert mean[0].tolist() == [2.0, 3.0, 4.0]
    assert low[0].tolist() == [1.0, 2.0, 3.0] and high[0].tolist() == [3.0, 4.0, 5.0]
    assert json_floats(mean[1]) == [10.0, 10.0, None]
    assert json_floats(mean[2]) == [None, None, None]


def test_downsampled_bands_envelope_the_bucket() -> None:
    steps = np.arange(1000)
    rng = np.random.default_rng(0)
    rows = rng.random((3, 1000))
    aligned = align([(steps, r) for r in rows])
    mean, low, high = group_bands(aligned, [[0, 1, 2]])
    small, lo, hi = downsample_aligned(
        type(aligned)(aligned.steps, mean), 100, lower=low, upper=high
    )
    assert lo is not None and hi is not None
    assert lo.min() == pytest.approx(rows.min()) and hi.max() == pytest.approx(rows.max())
    assert np.all(lo <= small.values) and np.all(small.values <= hi)


def test_json_floats_nulls_every_non_finite_value_and_keeps_the_rest_exact() -> None:
    values = np.array([0.1, np.nan, np.inf, -np.inf, -2.5, 1e-300], dtype=np.float64)
    assert json_floats(values) == [0.1, None, None, None, -2.5, 1e-300]
    single = np.array([0.1, np.nan], dtype=np.float32)  # outputs are stored as float32
    assert json_floats(single) == [float(np.float32(0.1)), None]
    assert all(type(v) is float for v in json_floats(values) if v is not None)
