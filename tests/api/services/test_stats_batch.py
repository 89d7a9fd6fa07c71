"""The batched statistics (one SciPy call over many tests) give exactly, bit for bit, what one
SciPy call per test gives: the reference here is each test computed alone with SciPy's
one-sample functions, as the summary computed them before batching."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

from api.services.stats import CONFIDENCE, describe_many, paired_differences


def _pairs(seed: int) -> list[tuple[dict[int, float], dict[int, float]]]:
    """Arms of 0..8 shared seeds, some with missing seeds, NaN, or a constant difference."""
    rng = np.random.default_rng(seed)
    made = []
    for k in range(60):
        n = int(rng.integers(0, 9))
        arm = {s: float(rng.normal(0.9, 0.02)) for s in range(n)}
        base = {s: float(rng.normal(0.9, 0.02)) for s in range(n)}
        if k % 7 == 0:
            base = {s: v - 0.01 for s, v in arm.items()}  # the same difference every seed
        if k % 5 == 0 and n:
            arm[0] = math.nan
        if k % 3 == 0:
            base[n + 3] = 0.5  # a seed only the baseline finished
        made.append((arm, base))
    return made


def _alone(arm: dict[int, float], base: dict[int, float]) -> tuple[Any, ...] | None:
    seeds = sorted(s for s in set(arm) & set(base) if math.isfinite(arm[s] + base[s]))
    a = np.array([arm[s] for s in seeds])
    r = np.array([base[s] for s in seeds])
    diffs = a - r
    if len(seeds) < 2 or float(np.ptp(diffs)) <= 1e-12 * max(1.0, float(np.max(np.abs(diffs)))):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sps.ttest_rel(a, r)
        ci = result.confidence_interval(CONFIDENCE)
    dz = float(diffs.mean()) / float(diffs.std(ddof=1))
    return (float(result.statistic), float(result.pvalue), float(ci.low), float(ci.high), dz)


def test_paired_differences_equal_one_test_at_a_time() -> None:
    pairs = _pairs(1)
    batched = paired_differences(pairs)
    tested = 0
    for (arm, base), got in zip(pairs, batched, strict=True):
        expected = _alone(arm, base)
        if expected is None:
            assert got.p_value is None and got.note
            continue
        tested += 1
        assert (got.statistic, got.p_value, got.ci_low, got.ci_high, got.cohen_dz) == expected
        assert got.needed is not None
    assert tested > 20  # most pairs were real tests, grouped by their number of seeds


def test_describe_many_equals_one_interval_at_a_time() -> None:
    rng = np.random.default_rng(2)
    samples = [list(rng.normal(0.9, 0.03, int(rng.integers(0, 8)))) for _ in range(80)]
    for values, got in zip(samples, describe_many(samples), strict=True):
        if len(values) < 2:
            assert got.ci_low is None
            continue
        arr = np.asarray(values)
        low, high = sps.t.interval(
            CONFIDENCE, df=len(values) - 1, loc=float(arr.mean()),
            scale=float(arr.std(ddof=1)) / math.sqrt(len(values)),
        )  # fmt: skip
        assert (got.ci_low, got.ci_high) == (float(low), float(high))
