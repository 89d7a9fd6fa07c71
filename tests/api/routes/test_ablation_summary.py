"""GET /ablations/{id}/summary: successive and reference comparisons of a book ablation with
Holm-adjusted p-values, the final-loss rule, and the per-record analysis of single-seed arms,
on SQLite and Postgres. Runs are written through the store as a worker writes them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from api.services.stats import holm, paired_difference
from core.presets import BOOK_CHAIN, build_spec
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}
ACCURACY = [
    {0: 0.80, 1: 0.82, 2: 0.81},
    {0: 0.85, 1: 0.86, 2: 0.88},
    {0: 0.90, 1: 0.87, 2: 0.91},
    {0: 0.91, 1: 0.92, 2: 0.92},
    {0: 0.95, 1: 0.93, 2: 0.97},
]


def _book(client: AppClient, runs: RecordedRuns, seeds: int = 3) -> str:
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in range(seeds):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            runs.finished_run(
                spec, accuracy=ACCURACY[arm][seed], final_loss=0.5 - 0.05 * arm + 0.013 * seed**2
            )
    created = client.post(
        "/ablations", json={"design": "book", "overrides": SUBSET, "seeds": seeds}
    )
    assert created.status_code == 201 and created.json()["created_experiments"] == 0
    ablation_id: str = created.json()["id"]
    return ablation_id


def test_successive_comparisons_of_the_book_chain(client: AppClient, runs: RecordedRuns) -> None:
    ablation_id = _book(client, runs)
    summary = client.get(f"/ablations/{ablation_id}/summary?compare=successive").json()
    assert summary["compare"] == "successive" and summary["reference"] is None
    comparisons = summary["comparisons"]
    assert [(c["arm"], c["baseline"]) for c in comparisons] == [(1, 0), (2, 1), (3, 2), (4, 3)]
    assert [c["label"] for c in comparisons] == list(BOOK_CHAIN[1:])
    raw = [paired_difference(ACCURACY[k], ACCURACY[k - 1]).p_value for k in range(1, 5)]
    assert [c["test_accuracy"]["p_value"] for c in comparisons] == pytest.approx(raw)
    assert [c["test_accuracy"]["p_holm"] for c in comparisons] == pytest.approx(holm(raw))
    for c in comparisons:
        acc = c["test_accuracy"]
        assert acc["n_pairs"] == 3 and acc["ci_low"] < acc["mean_diff"] < acc["ci_high"]
        assert acc["p_holm"] >= acc["p_value"]
        assert isinstance(acc["cohen_dz"], float) and isinstance(acc["seeds_needed"], int)
        assert c["records"] is None  # three seeds: the test over seeds is the answer
    # Baseline (MSE) to BCE: final losses on different scales are not compared.
    assert comparisons[0]["final_loss"] is None and "mse" in comparisons[0]["final_loss_note"]
    assert comparisons[1]["final_loss"]["mean_diff"] == pytest.approx(-0.05)
    assert [a["loss_function"] for a in summary["arms"]] == ["mse", "bce", "bce", "bce", "bce"]
    assert summary["arms"][0]["diff_to_previous"] is None


def test_reference_mode_is_todays_answer_plus_the_new_fields(
    client: AppClient, runs: RecordedRuns
) -> None:
    ablation_id = _book(client, runs)
    default = client.get(f"/ablations/{ablation_id}/summary").json()
    explicit = client.get(f"/ablations/{ablation_id}/summary?compare=reference&reference=0")
    assert explicit.json() == default
    assert default["compare"] == "reference" and default["reference"] == 0
    assert default["test"] == "paired t-test"
    arms = default["arms"]
    assert arms[0]["diff_to_reference"]["note"] == "the reference arm itself"
    for row, comparison in zip(arms[1:], default["comparisons"], strict=True):
        assert row["diff_to_reference"] == comparison["test_accuracy"]
        assert comparison["final_loss"] is None  # every other arm trains with BCE, arm 0 MSE
    against_bce = client.get(f"/ablations/{ablation_id}/summary", params={"reference": 1}).json()
    losses = {c["arm"]: c["final_loss"] for c in against_bce["comparisons"]}
    assert losses[0] is None and all(losses[k] is not None for k in (2, 3, 4))


def _predicted(labels: np.ndarray, wrong: list[int]) -> np.ndarray:
    guess = labels.copy()
    guess[wrong] = (labels[wrong] + 1) % 10
    return guess


def test_single_seed_arms_get_the_per_record_analysis(
    client: AppClient, runs: RecordedRuns
) -> None:
    labels = (np.arange(50) % 10).astype(np.uint8)
    # Baseline wrong on records 0..11; BCE wrong on 12..14: b = 3, c = 12 against the baseline.
    wrong = {0: list(range(12)), 1: [12, 13, 14], 2: [12, 13, 14], 3: [], 4: []}
    ids = []
    for arm, preset in enumerate(BOOK_CHAIN):
        spec = build_spec(preset, {**SUBSET, "seed": 0})
        predicted = _predicted(labels, wrong[arm])
        accuracy = float((predicted == labels).mean())
        run = runs.finished_run(spec, accuracy=accuracy, final_loss=0.1, predicted=predicted)
        ids.append(run.id)
    created = client.post("/ablations", json={"design": "book", "overrides": SUBSET, "seeds": 1})
    ablation_id = created.json()["id"]
    summary = client.get(f"/ablations/{ablation_id}/summary?compare=successive").json()
    first = summary["comparisons"][0]
    assert first["test_accuracy"]["p_value"] is None  # one seed: no test over seeds
    (record,) = first["records"]
    assert (record["seed"], record["first"], record["second"]) == (0, ids[0], ids[1])
    assert (record["both_right"], record["b"], record["c"], record["both_wrong"]) == (35, 3, 12, 0)
    assert record["mcnemar_p"] == pytest.approx(2 * (1 + 15 + 105 + 455) / 2**15)
    assert record["accuracy_diff"] == pytest.approx(9 / 50)
    assert record["ci_low"] < 9 / 50 < record["ci_high"] and record["resamples"] == 10_000
    p = [c["records"][0]["mcnemar_p"] for c in summary["comparisons"]]
    assert p[1] == 1.0  # identical predictions: no discordant records
    assert p[2] == pytest.approx(0.25)  # b = 3, c = 0: 2 / 2^3
    assert [c["records"][0]["p_holm"] for c in summary["comparisons"]] == pytest.approx(holm(p))
    again = client.get(f"/ablations/{ablation_id}/summary?compare=successive").json()
    assert again["comparisons"][0]["records"] == first["records"]  # same interval every time


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"compare": "pairwise"}, "compare", "successive"),
        ({"compare": "successive", "reference": 1}, "reference", "compare=reference"),
        ({"reference": 5}, "reference", "arms 0..4"),
        ({"reference": -1}, "reference", "greater than or equal"),
    ],
)
def test_bad_summary_parameters(
    client: AppClient, runs: RecordedRuns, params: dict[str, Any], field: str, words: str
) -> None:
    created = client.post("/ablations", json={"design": "book", "overrides": SUBSET, "seeds": 1})
    response = client.get(f"/ablations/{created.json()['id']}/summary", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == field and words in error["reason"]
