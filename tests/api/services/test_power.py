"""Seeds needed for 80 % power, checked against published G*Power figures."""

from __future__ import annotations

import pytest

from api.services.power import MOST_SEEDS, paired_t_power, seeds_needed

# G*Power 3.1 (Faul et al. 2007), "t tests - Means: Difference from constant (one sample
# case)", which is the paired t-test on the differences: two tails, alpha 0.05, power 0.80.
# Effect size dz -> total sample size, actual power (as G*Power prints them).
GPOWER = [(0.5, 34, 0.8077), (0.8, 15, 0.8213), (1.0, 10, 0.8031)]


@pytest.mark.parametrize(("d_z", "n", "actual"), GPOWER)
def test_seeds_needed_matches_gpower(d_z: float, n: int, actual: float) -> None:
    assert seeds_needed(d_z).seeds == n
    assert seeds_needed(-d_z).seeds == n  # the direction does not matter to a two-sided test
    assert paired_t_power(d_z, n) == pytest.approx(actual, abs=1e-4)
    assert paired_t_power(d_z, n - 1) < 0.80 <= paired_t_power(d_z, n)


def test_with_no_effect_the_power_is_the_test_level() -> None:
    # Under the null the noncentral t is the central t: P(|T| > t_crit) = alpha exactly.
    assert paired_t_power(0.0, 12) == pytest.approx(0.05, abs=1e-12)


def test_a_huge_effect_needs_the_fewest_seeds_a_test_can_have() -> None:
    assert seeds_needed(50.0).seeds == 2


def test_no_answer_without_an_effect_or_beyond_the_bound() -> None:
    for d_z, words in ((None, "at least 2 seeds"), (0.0, "no difference"), (1e-4, "more than")):
        found = seeds_needed(d_z)
        assert found.seeds is None and found.note and words in found.note, d_z
    assert f"{MOST_SEEDS:,}" in (seeds_needed(1e-4).note or "")
