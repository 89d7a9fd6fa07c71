"""McNemar's exact test and the paired bootstrap on 2x2 tables small enough to do by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from api.services.paired_records import compare_records


def _table(both_right: int, b: int, c: int, both_wrong: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness arrays of two models with exactly these cell counts."""
    first = np.array([True] * both_right + [True] * b + [False] * c + [False] * both_wrong)
    second = np.array([True] * both_right + [False] * b + [True] * c + [False] * both_wrong)
    return first, second


def test_b3_c12_gives_the_exact_binomial_p_value() -> None:
    first, second = _table(both_right=80, b=3, c=12, both_wrong=5)
    result = compare_records(first, second, seed_key="x")
    assert (result.records, result.both_right, result.b, result.c, result.both_wrong) == (
        100,
        80,
        3,
        12,
        5,
    )
    # Under H0, b ~ Binomial(15, 1/2). Two-sided: twice the lower tail P(B <= 3),
    # 2 * (C(15,0) + C(15,1) + C(15,2) + C(15,3)) / 2^15 = 2 * (1 + 15 + 105 + 455) / 32768.
    assert result.mcnemar_p == pytest.approx(2 * 576 / 32768, rel=1e-12)
    assert result.mcnemar_p == pytest.approx(0.03515625)
    assert result.accuracy_first == 0.83 and result.accuracy_second == 0.92
    assert result.accuracy_diff == pytest.approx((12 - 3) / 100)


def test_b0_c5_and_the_symmetric_table() -> None:
    # P(B = 0 or B = 5 | n = 5) = 2 / 32.
    first, second = _table(10, 0, 5, 0)
    assert compare_records(first, second, seed_key="x").mcnemar_p == pytest.approx(0.0625)
    swapped = compare_records(second, first, seed_key="x")
    assert (swapped.b, swapped.c, swapped.mcnemar_p) == (5, 0, pytest.approx(0.0625))
    assert swapped.accuracy_diff == pytest.approx(-5 / 15)


def test_bootstrap_interval_is_reproducible_and_about_the_normal_one() -> None:
    first, second = _table(both_right=8500, b=300, c=420, both_wrong=780)
    one = compare_records(first, second, seed_key="a:b")
    again = compare_records(first, second, seed_key="a:b")
    other = compare_records(first, second, seed_key="a:c")
    assert (one.ci_low, one.ci_high) == (again.ci_low, again.ci_high)
    assert (one.ci_low, one.ci_high) != (other.ci_low, other.ci_high)
    assert one.resamples == 10_000
    # By hand: d_i in {-1, 0, 1}; mean (c - b)/n = 0.012, variance of one d_i is
    # (b + c)/n - mean^2 = 0.072 - 0.000144, so the standard error is sqrt(0.071856 / n).
    n, mean = 10_000, 0.012
    se = math.sqrt((720 / n - mean**2) / n)
    assert one.ci_low == pytest.approx(mean - 1.96 * se, abs=4e-4)
    assert one.ci_high == pytest.approx(mean + 1.96 * se, abs=4e-4)
    assert one.ci_low < one.accuracy_diff < one.ci_high


def test_no_discordant_records_is_p_one_and_a_zero_interval() -> None:
    first, second = _table(40, 0, 0, 10)
    result = compare_records(first, second, seed_key="x")
    assert result.mcnemar_p == 1.0 and result.note and "no discordant" in result.note
    assert (result.ci_low, result.ci_high, result.accuracy_diff) == (0.0, 0.0, 0.0)


def test_unequal_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="same records"):
        compare_records(np.ones(3, bool), np.ones(4, bool), seed_key="x")
    with pytest.raises(ValueError, match="no records"):
        compare_records(np.ones(0, bool), np.ones(0, bool), seed_key="x")
