"""Ablations over HTTP on both backends: creation with reuse and bounds, listing, progress,
cancellation, the paired summary and the per-arm curves. Finished runs are written through
the store exactly as a worker writes them, so the statistics are checked against known numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from core.presets import BOOK_CHAIN, build_spec
from core.store import experiments
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.conftest import BrokerMessageReader
from tests.api.recorded_runs import RecordedRuns, small_spec
from tests.core.store.helpers import finish

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}
GRID = {
    "preset": "seed-baseline",
    "overrides": SUBSET,
    "factors": {"loss": ["mse", "bce"], "model.activation": ["sigmoid", "leaky_relu"]},
    "seeds": 2,
}

# Test accuracy per (arm, seed) for a 3-seed book ablation: chosen by hand, varied per seed.
ACCURACY = {
    arm: {seed: 0.80 + 0.03 * arm + d for seed, d in enumerate((0.0, 0.011, 0.004))}
    for arm in range(5)
}
ACCURACY[2] = {0: 0.90, 1: 0.87, 2: 0.91}


def _post(client: AppClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/ablations", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/ablations/{response.json()['id']}"
    created: dict[str, Any] = response.json()
    return created


def _record_book(runs: RecordedRuns, seeds: range = range(3)) -> dict[tuple[int, int], str]:
    ids = {}
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in seeds:
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            run = runs.finished_run(
                spec, accuracy=ACCURACY[arm][seed], final_loss=0.5 - 0.05 * arm + 0.01 * seed
            )
            ids[(arm, seed)] = run.id
    return ids


def test_grid_creates_and_dispatches_every_cell(
    client: AppClient, broker_messages: BrokerMessageReader
) -> None:
    created = _post(client, GRID)
    assert created["design"] == "grid" and created["seeds"] == [0, 1]
    assert [a["label"] for a in created["arms"]][-1] == "loss=bce, model.activation=leaky_relu"
    assert created["arms"][3]["spec"]["model"]["activation"] == "leaky_relu"
    assert len(created["members"]) == 8 and created["created_experiments"] == 8
    assert created["status"] == "queued" and created["status_counts"]["queued"] == 8
    assert created["progress"]["total"] == 8 * 200 and created["progress"]["fraction"] == 0.0
    for member in created["members"]:
        experiment = client.get(f"/experiments/{member['experiment_id']}").json()
        assert experiment["spec"]["seed"] == member["seed"]
        assert experiment["spec"]["epochs"] == 1
        assert len(broker_messages.runs_for(member["experiment_id"])) == 1


def test_identical_spec_and_seed_is_reused_unless_it_failed(
    client: AppClient, engine: Engine, runs: RecordedRuns
) -> None:
    done = runs.finished_run(
        build_spec("seed-bce", {**SUBSET, "seed": 1}), accuracy=0.9, final_loss=0.1
    )
    failed_id, attempt = runs.start(build_spec("seed-bce", {**SUBSET, "seed": 0}))
    assert finish(engine, failed_id, attempt, Status.failed, error="boom")
    created = _post(
        client, {"preset": "seed-baseline", "overrides": SUBSET, "factors": {"loss": ["bce"]}}
    )
    cells = {(m["arm"], m["seed"]): m["experiment_id"] for m in created["members"]}
    assert cells[(0, 1)] == done.id
    assert cells[(0, 0)] != failed_id
    assert (created["created_experiments"], created["reused_experiments"]) == (2, 1)
    again = _post(
        client, {"preset": "seed-baseline", "overrides": SUBSET, "factors": {"loss": ["bce"]}}
    )
    assert again["created_experiments"] == 0
    assert {(m["arm"], m["seed"]): m["experiment_id"] for m in again["members"]} == cells


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"factors": {"lr": [0.001 * (i + 1) for i in range(20)]}, "seeds": 11}, "seeds", "200"),
        ({"factors": {"loss": ["mse", "cross_entropy"]}}, "arms[1].loss", "model.output"),
        ({"design": "book", "factors": {"loss": ["bce"]}}, "factors", "design=book"),
        ({"preset": "no-such"}, "preset", "unknown preset"),
        ({"seeds": 0}, "seeds", "1..50"),
        ({"factors": {"model.hidden": [[0]]}}, "arms[0].model.hidden[0]", "width"),
        ({"design": "latin-square"}, "design", "grid"),
    ],
)
def test_bad_ablations_get_422_naming_the_field_and_store_nothing(
    client: AppClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/ablations", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == field, error
    assert words in error["reason"]
    assert client.get("/ablations").json()["items"] == []
    assert client.get("/experiments").json()["items"] == []


def test_list_detail_and_paging(client: AppClient) -> None:
    first = _post(client, {**GRID, "name": "first"})
    second = _post(client, {"design": "book", "overrides": SUBSET, "seeds": 1, "name": "second"})
    page = client.get("/ablations", params={"limit": 1}).json()
    assert [a["id"] for a in page["items"]] == [second["id"]]
    assert page["items"][0]["status_counts"]["queued"] == 5
    assert page["items"][0]["progress"]["experiments"] == 5
    rest = client.get("/ablations", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [a["id"] for a in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    detail = client.get(f"/ablations/{second['id']}").json()
    assert [a["label"] for a in detail["arms"]] == list(BOOK_CHAIN)
    assert detail["request"]["design"] == "book"
    assert client.get("/ablations/nopenope").status_code == 404
    bad = client.get("/ablations", params={"cursor": "%%%"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_progress_and_cancel_leave_finished_runs_alone(
    client: AppClient, runs: RecordedRuns
) -> None:
    run = runs.finished_run(
        build_spec("seed-baseline", {**SUBSET, "seed": 0}), accuracy=0.8, final_loss=0.2
    )
    created = _post(client, {"design": "book", "overrides": SUBSET, "seeds": 1})
    assert created["status_counts"]["succeeded"] == 1 and created["status"] == "running"
    assert created["progress"]["step"] == 200 and created["progress"]["total"] == 1000
    cancelled = client.post(f"/ablations/{created['id']}/cancel", json={}).json()
    assert cancelled["cancel_requested"] == 4
    assert cancelled["status_counts"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 4,
    }
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["fraction"] == 1.0
    assert client.get(f"/experiments/{run.id}").json()["status"] == "succeeded"
    assert (
        client.post(f"/ablations/{created['id']}/cancel", json={}).json()["cancel_requested"] == 0
    )
    assert client.post("/ablations/nopenope/cancel", json={}).status_code == 404


def test_cancel_keeps_runs_another_ablation_shares(client: AppClient) -> None:
    first = _post(client, {"design": "book", "overrides": SUBSET, "seeds": 1})
    second = _post(client, {"design": "book", "overrides": SUBSET, "seeds": [0, 1]})
    shared = {m["experiment_id"] for m in first["members"]}
    assert shared <= {m["experiment_id"] for m in second["members"]}
    cancelled = client.post(f"/ablations/{second['id']}/cancel", json={}).json()
    assert cancelled["cancel_requested"] == 5  # seed 1's runs, which only it asked for
    assert set(cancelled["kept_shared"]) == shared
    for experiment_id in shared:
        assert client.get(f"/experiments/{experiment_id}").json()["status"] == "queued"


def test_summary_statistics_match_the_per_seed_numbers(
    client: AppClient, runs: RecordedRuns
) -> None:
    ids = _record_book(runs)
    created = _post(client, {"design": "book", "overrides": SUBSET, "seeds": 3})
    assert created["created_experiments"] == 0 and created["status"] == "succeeded"
    assert {(m["arm"], m["seed"]): m["experiment_id"] for m in created["members"]} == ids

    summary = client.get(f"/ablations/{created['id']}/summary").json()
    assert summary["test"] == "paired t-test" and summary["reference"] == 0
    for arm in summary["arms"]:
        acc = arm["test_accuracy"]
        mine = list(ACCURACY[arm["arm"]].values())
        assert arm["n"] == acc["n"] == 3 and arm["expected"] == 3
        assert acc["mean"] == pytest.approx(sum(mine) / 3)
        assert acc["ci_low"] < acc["mean"] < acc["ci_high"]
        assert arm["final_loss"]["mean"] == pytest.approx(0.5 - 0.05 * arm["arm"] + 0.01)
        diffs = [ACCURACY[arm["arm"]][s] - ACCURACY[0][s] for s in range(3)]
        diff = arm["diff_to_reference"]
        assert diff["mean_diff"] == pytest.approx(sum(diffs) / 3, abs=1e-12)
    # Arms 1, 3, 4 differ from arm 0 by the same amount for every seed: no t-test possible.
    assert summary["arms"][1]["diff_to_reference"]["p_value"] is None
    # Arm 2's differences vary by seed: a real paired t-test with 2 degrees of freedom.
    d = np.array([ACCURACY[2][s] - ACCURACY[0][s] for s in range(3)])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    two = summary["arms"][2]["diff_to_reference"]
    assert two["t_statistic"] == pytest.approx(t)
    assert two["p_value"] == pytest.approx(1 - abs(t) / math.sqrt(t * t + 2))
    assert two["ci_low"] < two["mean_diff"] < two["ci_high"]

    against_2 = client.get(f"/ablations/{created['id']}/summary", params={"reference": 2}).json()
    assert against_2["reference"] == 2
    assert against_2["arms"][0]["diff_to_reference"]["mean_diff"] == pytest.approx(-d.mean())
    bad = client.get(f"/ablations/{created['id']}/summary", params={"reference": 5})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reference"


def test_summary_of_unfinished_arms_has_nulls_and_notes(
    client: AppClient, runs: RecordedRuns
) -> None:
    runs.finished_run(build_spec("seed-bce", {**SUBSET, "seed": 0}), accuracy=0.85, final_loss=0.2)
    created = _post(client, {"design": "book", "overrides": SUBSET, "seeds": 2})
    summary = client.get(f"/ablations/{created['id']}/summary").json()
    bce = summary["arms"][1]
    assert bce["n"] == 1 and bce["finished"] == 1 and bce["expected"] == 2
    assert bce["test_accuracy"]["ci_low"] is None and "n=1" in bce["test_accuracy"]["note"]
    assert bce["diff_to_reference"]["n_pairs"] == 0 and bce["diff_to_reference"]["note"]
    assert summary["arms"][0]["n"] == 0


def test_arm_curves_are_the_seed_mean_with_a_min_max_band(
    client: AppClient, runs: RecordedRuns
) -> None:
    spec = small_spec("seed-adam")
    recorded = []
    for seed, shift in ((0, 0.0), (1, 0.2), (2, 0.1)):
        steps = [10 * (i + 1) for i in range(20)]
        values = [1.0 - 0.01 * i + shift for i in range(20)]
        recorded.append(
            runs.finished_run(
                spec.model_copy(update={"seed": seed}),
                accuracy=0.9,
                final_loss=0.1,
                series=(steps, values),
            )
        )
    created = _post(client, {"preset": "seed-adam", "overrides": SUBSET, "seeds": 3})
    assert created["created_experiments"] == 0
    curves = client.get(f"/ablations/{created['id']}/curves").json()
    arm = curves["arms"][0]
    assert curves["steps"] == recorded[0].steps and arm["seeds"] == 3
    expected_mean = [1.0 - 0.01 * i + 0.1 for i in range(20)]
    assert arm["mean"] == pytest.approx(expected_mean, abs=1e-6)
    assert arm["low"] == pytest.approx([v - 0.1 for v in expected_mean], abs=1e-6)
    assert arm["high"] == pytest.approx([v + 0.1 for v in expected_mean], abs=1e-6)
    small = client.get(f"/ablations/{created['id']}/curves", params={"max_points": 10}).json()
    assert len(small["steps"]) <= 10 and len(small["arms"][0]["mean"]) == len(small["steps"])
    assert (
        client.get(f"/ablations/{created['id']}/curves", params={"max_points": 2}).status_code
        == 422
    )


def test_an_ablation_name_is_a_valid_tag_and_nothing_stored_breaks_a_listing(
    client: AppClient, engine: Engine
) -> None:
    longest = "n" * 100
    created = client.post(
        "/ablations", json={"name": longest, "preset": "seed-baseline", "seeds": 1}
    )
    assert created.status_code == 201, created.text
    for listing in ("/experiments", f"/experiments?tag={longest}", "/ablations", "/"):
        assert client.get(listing).status_code == 200, listing
    member = client.get("/experiments", params={"tag": longest}).json()["items"]
    assert len(member) == 1 and member[0]["tags"] == ["ablation", longest]
    assert client.get(f"/experiments/{member[0]['id']}").status_code == 200
    for bad in ("n" * 101, "two\nlines", " padded", "bidi\u202eoverride"):
        refused = client.post("/ablations", json={"name": bad, "preset": "seed-baseline"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "name"


def test_rows_stored_under_older_rules_still_list(client: AppClient, engine: Engine) -> None:
    # What the old rule let in: a 200-character ablation name copied into every member's tags.
    with session_scope(engine) as session:
        experiments.create_experiment(
            session, small_spec(), name="x" * 200, tags=["ablation", "y" * 200, "z\x00"]
        )
    listed = client.get("/experiments")
    assert listed.status_code == 200
    assert listed.json()["items"][0]["tags"][1] == "y" * 200
