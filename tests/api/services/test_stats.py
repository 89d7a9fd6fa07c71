"""Ablation statistics on numbers small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from api.services.ablation_summary import ArmResults, summarize
from api.services.stats import describe, holm, paired_difference

# Student's t quantile t(0.975, df=2) from any printed table.
T975_DF2 = 4.302652729911275


def test_describe_matches_the_textbook_interval() -> None:
    result = describe([1.0, 2.0, 3.0])
    assert result.n == 3
    assert result.mean == pytest.approx(2.0)
    assert result.std == pytest.approx(1.0)
    half = T975_DF2 * 1.0 / math.sqrt(3)
    assert result.ci_low == pytest.approx(2.0 - half)
    assert result.ci_high == pytest.approx(2.0 + half)
    assert result.ci_low is not None and result.ci_high is not None and result.mean is not None
    assert result.ci_low < result.mean < result.ci_high


def test_describe_small_samples_give_nulls_and_a_note() -> None:
    one = describe([0.9])
    assert (one.n, one.mean, one.std, one.ci_low, one.ci_high) == (1, 0.9, None, None, None)
    assert one.note and "n=1" in one.note
    empty = describe([])
    assert (empty.n, empty.mean) == (0, None)
    assert empty.note


def test_describe_drops_non_finite_values_and_handles_constant_samples() -> None:
    assert describe([1.0, float("nan"), 3.0]).n == 2
    flat = describe([0.5, 0.5, 0.5])
    assert (flat.mean, flat.std, flat.ci_low, flat.ci_high) == (0.5, 0.0, 0.5, 0.5)


def test_paired_difference_is_the_mean_of_per_seed_differences() -> None:
    arm = {0: 0.90, 1: 0.92, 2: 0.95}
    ref = {0: 0.85, 1: 0.90, 2: 0.91}
    result = paired_difference(arm, ref)
    diffs = [arm[s] - ref[s] for s in (0, 1, 2)]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    t = mean / (sd / math.sqrt(3))
    assert result.n_pairs == 3 and result.seeds == [0, 1, 2]
    assert result.mean_diff == pytest.approx(mean)
    assert result.statistic == pytest.approx(t)
    # Two-sided p-value of Student's t with 2 degrees of freedom has a closed form.
    assert result.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))
    half = T975_DF2 * sd / math.sqrt(3)
    assert result.ci_low == pytest.approx(mean - half)
    assert result.ci_high == pytest.approx(mean + half)


def test_paired_difference_uses_only_shared_seeds() -> None:
    result = paired_difference({0: 0.9, 1: 0.8, 7: 0.1}, {0: 0.7, 1: 0.7, 3: 0.5})
    assert result.seeds == [0, 1]
    assert result.mean_diff == pytest.approx(((0.9 - 0.7) + (0.8 - 0.7)) / 2)


def test_paired_difference_degenerate_cases_are_answered_with_a_note() -> None:
    one = paired_difference({0: 0.9}, {0: 0.8})
    assert one.n_pairs == 1 and one.p_value is None and one.ci_low is None
    assert one.mean_diff == pytest.approx(0.1)
    same = paired_difference({0: 0.9, 1: 0.8}, {0: 0.8, 1: 0.7})
    assert same.p_value is None and same.note
    assert same.ci_low == same.ci_high == pytest.approx(0.1)
    none = paired_difference({0: 0.9}, {1: 0.8})
    assert none.n_pairs == 0 and none.mean_diff is None


def test_summary_per_arm_and_against_the_chosen_reference() -> None:
    arms = [
        ArmResults(0, "a", {0: 0.80, 1: 0.82, 2: 0.81}, {0: 0.3, 1: 0.2, 2: 0.25}),
        ArmResults(1, "b", {0: 0.90, 1: 0.93, 2: 0.91}, {0: 0.1, 1: 0.1, 2: 0.12}),
    ]
    summary = summarize(arms, reference=1)
    assert summary["reference"] == 1 and summary["test"] == "paired t-test"
    first, second = summary["arms"]
    assert first["n"] == 3
    acc = first["test_accuracy"]
    assert acc["ci_low"] < acc["mean"] < acc["ci_high"]
    assert first["final_loss"]["mean"] == pytest.approx(0.25)
    assert first["diff_to_reference"]["mean_diff"] == pytest.approx(-0.10333333333)
    assert second["diff_to_reference"]["mean_diff"] == 0.0
    assert second["diff_to_reference"]["note"] == "the reference arm itself"
    with pytest.raises(ValueError, match="reference arm 2"):
        summarize(arms, reference=2)


def test_holm_on_a_hand_worked_family() -> None:
    # Sorted: 0.005, 0.01, 0.03, 0.04 (m = 4) -> times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04
    # -> running maximum 0.02, 0.03, 0.06, 0.06; given back in the input order.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Missing tests are passed through and are not part of the family (m = 2 here).
    assert holm([0.2, None, 0.01]) == pytest.approx([0.2, None, 0.02])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_paired_difference_effect_size_is_cohens_dz() -> None:
    arm = {0: 0.90, 1: 0.92, 2: 0.95, 3: 0.91}
    ref = {0: 0.85, 1: 0.90, 2: 0.91, 3: 0.90}
    diffs = [arm[s] - ref[s] for s in arm]  # 0.05, 0.02, 0.04, 0.01
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    result = paired_difference(arm, ref)
    assert result.cohen_dz == pytest.approx(mean / sd)  # 0.03 / 0.018257 = 1.643
    assert result.needed is not None and result.needed.seeds == 6
    as_dict = result.as_dict()
    assert as_dict["cohen_dz"] == pytest.approx(1.6431676725)
    assert as_dict["seeds_needed"] == 6 and as_dict["seeds_needed_note"] is None
    one = paired_difference({0: 0.9}, {0: 0.8}).as_dict()
    assert one["cohen_dz"] is None and one["seeds_needed"] is None
