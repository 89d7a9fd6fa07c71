"""POST /sweeps refuses bad spaces with a 422 naming the field, and answers a retry with the
same Idempotency-Key with the same sweep (409 for a different body); a sweep driven by hand
(its runs finished in the store as a worker would) prunes a clearly worse trial at its first
rung, ends with exactly max_trials trials, and confirms its winner as an ablation; the reads a
dashboard polls are conditional (ETag, 304)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from api.background.sweeps import SweepDriver
from core.keys import Role
from core.settings import Settings
from core.store import keys
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.sweep_runs import Sent, finish_runs

SPACE = {"lr": {"type": "choice", "values": [0.5, 0.0001]}}
# Two trials: a prune from the second on (the default waits for six trials at a rung).
BASE = {"preset": "seed-baseline", "overrides": {"train_limit": 500, "test_limit": 100,
        "epochs": 1, "batch_size": 10}, "validation_records": 200, "prune_after": 2}  # fmt: skip


def _post(client: AppClient, **body: Any) -> Any:
    return client.post("/sweeps", json={**BASE, "space": SPACE, **body})


@pytest.mark.parametrize(
    ("space", "field"),
    [
        ({"lr": {"type": "uniform", "low": 0.1, "high": 0.1}}, "space.lr"),
        ({"lr": {"type": "log_uniform", "low": 0, "high": 0.1}}, "space.lr"),
        ({"nope": {"type": "uniform", "low": 0, "high": 1}}, "space.nope"),
        ({"loss": {"type": "uniform", "low": 0, "high": 1}}, "space.loss"),
        ({"model.activation": {"type": "choice", "values": ["relu", "relu"]}},
         "space.model.activation"),
        ({"model.hidden": {"type": "choice", "values": [[4096] * 8]}}, "space.model.hidden"),
        ({"epochs": {"type": "uniform", "low": 1, "high": 3}}, "space.epochs"),
    ],
)  # fmt: skip
def test_bad_spaces_are_refused_naming_the_field(
    client: AppClient, space: dict[str, Any], field: str
) -> None:
    response = client.post("/sweeps", json={**BASE, "space": space})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field, response.text


def test_a_prune_after_below_two_trials_is_refused_naming_the_field(client: AppClient) -> None:
    response = _post(client, prune_after=1)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "prune_after", response.text


def test_a_sweep_over_the_cpu_hour_bound_is_refused(client: AppClient) -> None:
    response = client.post(
        "/sweeps",
        json={"preset": "seed-adam", "space": {"epochs": {"type": "int", "low": 4, "high": 6}},
              "max_trials": 200, "seeds": 10},
    )  # fmt: skip
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "space"


def test_a_sweep_prunes_the_loser_and_confirms_the_winner(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    created = _post(client, sampler="grid", max_trials=2, parallel=2, seeds=2)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    sent = Sent()
    driver = SweepDriver(engine, sent, settings)  # type: ignore[arg-type]
    driver.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    assert len(view["trials"]) == 2 and all(t["state"] == "queued" for t in view["trials"])
    assert len(sent.ids) == 4
    # A trial never reads the test set: its runs report on the validation split alone.
    for run_id in sent.ids:
        spec = client.get(f"/experiments/{run_id}").json()["spec"]
        assert spec["evaluate_test"] is False and spec["validation_records"] == 200
    finish_runs(engine, sweep_id, {0.5: 0.8, 0.0001: 0.1})
    driver.drive(sweep_id)
    driver.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    states = {t["params"]["lr"]: t for t in view["trials"]}
    assert states[0.0001]["state"] == "pruned" and states[0.0001]["pruned_at_rung"] == 0
    assert states[0.0001]["value_interval"] is None  # no full run of its seeds to bound
    assert states[0.5]["state"] == "complete"
    assert view["status"] == "succeeded" and view["budget"]["trials"] == 2
    assert view["best"]["params"] == {"lr": 0.5} and view["figures"] == "validation"
    csv = client.get(f"/sweeps/{sweep_id}/trials.csv")
    assert csv.status_code == 200 and csv.text.count("\n") == 3
    confirm = client.post(f"/sweeps/{sweep_id}/confirm", json={"top": 1, "seeds": 2})
    assert confirm.status_code == 201, confirm.text
    assert confirm.json()["seeds"] == [2, 3] and confirm.json()["figures"] == "test"
    ablation = client.get(f"/ablations/{confirm.json()['ablation_id']}").json()
    # The confirmation is where the test set is read, on the same training records.
    for arm in ablation["arms"]:
        assert "evaluate_test" not in arm["spec"] and arm["spec"]["validation_records"] == 200
    assert [a["label"] for a in ablation["arms"]] == ["base", "trial 0"] or len(
        ablation["arms"]
    ) == 2
    listed = client.get("/sweeps", params={"status": "succeeded"}).json()
    assert [s["id"] for s in listed["items"]] == [sweep_id]


def test_sweep_reads_are_conditional_and_complete_trials_carry_their_interval(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    created = _post(client, sampler="grid", pruner="none", max_trials=2, parallel=2, seeds=2)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    paths = ["/sweeps", f"/sweeps/{sweep_id}", f"/sweeps/{sweep_id}/importance"]
    tags = {}
    for path in paths:
        first = client.get(path)
        assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
        tags[path] = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": tags[path]})
        assert again.status_code == 304 and again.content == b"", path
    driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
    driver.drive(sweep_id)
    finish_runs(engine, sweep_id, {0.5: 0.8, 0.0001: 0.3})
    driver.drive(sweep_id)
    for path in paths:  # trials asked, run and ended: every answer moved
        moved = client.get(path, headers={"If-None-Match": tags[path]})
        assert moved.status_code == 200 and moved.headers["etag"] != tags[path], path
    view = client.get(f"/sweeps/{sweep_id}").json()
    assert [t["state"] for t in view["trials"]] == ["complete", "complete"]
    for trial in view["trials"]:
        band = trial["value_interval"]
        assert band["n"] == 2 and band["mean"] == pytest.approx(trial["value"])
        assert band["ci_low"] < band["mean"] < band["ci_high"]  # seeds differ by 0.01
    best = next(t for t in view["trials"] if t["params"] == {"lr": 0.5})
    assert view["best"]["validation_accuracy"] == best["value_interval"]
    assert client.get(f"/sweeps/{sweep_id}/importance").json()["importances"] == {"lr": 1.0}


def test_a_retried_post_with_one_key_makes_one_sweep(client: AppClient) -> None:
    key = {"Idempotency-Key": "sweep-1"}
    first = client.post("/sweeps", json={**BASE, "space": SPACE, "max_trials": 2}, headers=key)
    again = client.post("/sweeps", json={**BASE, "space": SPACE, "max_trials": 2}, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == f"/sweeps/{first.json()['id']}"
    assert [s["id"] for s in client.get("/sweeps").json()["items"]] == [first.json()["id"]]
    changed = client.post("/sweeps", json={**BASE, "space": SPACE, "max_trials": 3}, headers=key)
    assert changed.status_code == 409 and "different request body" in changed.json()["detail"]
    other = client.post("/sweeps", json={**BASE, "space": SPACE, "max_trials": 2},
                        headers={"Idempotency-Key": "sweep-2"})  # fmt: skip
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    unkeyed = [_post(client, max_trials=2).json()["id"] for _ in range(2)]
    assert len(set(unkeyed)) == 2  # without a key, every POST is a sweep of its own
    bad_key = client.post(
        "/sweeps", json={**BASE, "space": SPACE}, headers={"Idempotency-Key": " x"}
    )
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "Idempotency-Key"


def test_one_key_of_two_accounts_makes_two_sweeps(guarded: AppClient, engine: Engine) -> None:
    with session_scope(engine) as session:
        tokens = {name: keys.create_key(session, name, Role.member)[1] for name in ("ann", "ben")}
    made = {}
    for name, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "shared"}
        answer = guarded.post("/sweeps", json={**BASE, "space": SPACE}, headers=headers)
        assert answer.status_code == 201 and answer.json()["owner"] == name, answer.text
        made[name] = answer.json()["id"]
    assert made["ann"] != made["ben"]
