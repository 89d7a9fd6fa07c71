"""The ablation summary's comparison families: which pairs, Holm across them, the final-loss
rule and when the per-record analysis joins in."""

from __future__ import annotations

from typing import Any

import pytest

from api.services.ablation_summary import ArmResults, comparison_pairs, summarize
from api.services.stats import holm, paired_difference

SEEDS = (0, 1, 2)
ACC = [
    {0: 0.80, 1: 0.82, 2: 0.81},
    {0: 0.85, 1: 0.86, 2: 0.88},
    {0: 0.90, 1: 0.89, 2: 0.93},
    {0: 0.91, 1: 0.92, 2: 0.92},
]
LOSS = ["mse", "bce", "bce", "bce"]


def _arms(seeds: tuple[int, ...] = SEEDS) -> list[ArmResults]:
    return [
        ArmResults(
            i,
            f"arm{i}",
            {s: ACC[i][s] for s in seeds},
            {s: 0.3 - 0.05 * i + 0.01 * s for s in seeds},
            LOSS[i],
        )
        for i in range(4)
    ]


def test_pairs_of_each_design() -> None:
    assert comparison_pairs(4, "successive", 0) == [(1, 0), (2, 1), (3, 2)]
    assert comparison_pairs(4, "reference", 2) == [(0, 2), (1, 2), (3, 2)]


def test_successive_comparisons_with_holm_across_the_family() -> None:
    summary = summarize(_arms(), compare="successive")
    assert summary["compare"] == "successive" and summary["reference"] is None
    assert summary["correction"] == "holm" and summary["effect_size"] == "cohen_dz"
    pairs = [(c["arm"], c["baseline"]) for c in summary["comparisons"]]
    assert pairs == [(1, 0), (2, 1), (3, 2)]
    raw = [paired_difference(ACC[k], ACC[k - 1]).p_value for k in (1, 2, 3)]
    got = [c["test_accuracy"]["p_value"] for c in summary["comparisons"]]
    assert got == pytest.approx(raw)
    assert [c["test_accuracy"]["p_holm"] for c in summary["comparisons"]] == pytest.approx(
        holm(raw)
    )
    assert summary["family_size"] == 3
    # Per arm: what it is compared with, under the successive name; arm 0 has nothing.
    assert summary["arms"][0]["diff_to_previous"] is None
    assert summary["arms"][2]["diff_to_previous"]["mean_diff"] == pytest.approx(
        sum(ACC[2][s] - ACC[1][s] for s in SEEDS) / 3
    )
    assert "diff_to_reference" not in summary["arms"][1]


def test_final_loss_is_compared_only_within_one_loss_function() -> None:
    summary = summarize(_arms(), compare="successive")
    first, second, third = summary["comparisons"]
    assert first["final_loss"] is None
    assert "mse" in first["final_loss_note"] and "bce" in first["final_loss_note"]
    # Arms 1..3 share BCE: compared, and Holm-adjusted within the final-loss family (m = 2);
    # their differences are exactly -0.05 for every seed, so there is no t-test to adjust.
    assert second["final_loss"]["mean_diff"] == pytest.approx(-0.05)
    assert second["final_loss"]["p_value"] is None and second["final_loss"]["p_holm"] is None
    assert third["final_loss_note"] is None
    assert any("different loss functions" in n for n in summary["notes"])
    against_mse = summarize(_arms(), compare="reference")["comparisons"]
    assert all(c["final_loss"] is None for c in against_mse)


def test_reference_mode_keeps_todays_fields() -> None:
    summary = summarize(_arms(), reference=1)
    assert summary["reference"] == 1 and summary["compare"] == "reference"
    assert summary["arms"][1]["diff_to_reference"]["note"] == "the reference arm itself"
    assert summary["arms"][1]["diff_to_reference"]["p_holm"] is None
    zero = summary["arms"][0]["diff_to_reference"]
    assert zero["mean_diff"] == pytest.approx((-0.05 - 0.04 - 0.07) / 3)
    assert zero is summary["comparisons"][0]["test_accuracy"]
    assert {"n", "test_accuracy", "final_loss", "per_seed"} <= set(summary["arms"][0])


def test_per_record_analysis_joins_only_when_seeds_are_few() -> None:
    asked: list[tuple[int, int, int]] = []

    def records(arm: int, baseline: int, seed: int) -> dict[str, Any] | None:
        asked.append((arm, baseline, seed))
        return {"mcnemar_p": [0.01, 0.04, 0.03][arm - 1], "b": 1, "c": 2}

    few = summarize(_arms(seeds=(0,)), compare="successive", records=records)
    assert asked == [(1, 0, 0), (2, 1, 0), (3, 2, 0)]
    found = [c["records"] for c in few["comparisons"]]
    assert [[r["seed"] for r in f] for f in found] == [[0], [0], [0]]
    # Holm across the per-record family: 0.01*3, then max(0.03*2, 0.03), then max(0.06, 0.04).
    assert [f[0]["p_holm"] for f in found] == pytest.approx([0.03, 0.06, 0.06])
    asked.clear()
    many = summarize(_arms(), compare="successive", records=records)
    assert asked == [] and all(c["records"] is None for c in many["comparisons"])
