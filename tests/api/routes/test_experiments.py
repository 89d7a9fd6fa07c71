"""Submitting, listing, reading and cancelling experiments over HTTP, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from core.broker import TRAINING_QUEUE
from core.presets import build_spec
from core.spec import ExperimentSpec
from core.store import experiments, runs
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.conftest import BrokerMessageReader
from tests.core.store.helpers import SMALL, finish, running


def _submit(client: AppClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post("/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_submit_preset_with_overrides_stores_queues_and_sends(
    client: AppClient, engine: Engine, broker_messages: BrokerMessageReader
) -> None:
    body = {"preset": "seed-layernorm", "overrides": SMALL, "name": "ln", "tags": ["book", "ln"]}
    response = client.post("/experiments", json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/experiments/{created['id']}"
    assert created["status"] == "queued" and created["attempt"] == 0
    assert created["preset"] == "seed-layernorm"
    assert created["name"] == "ln" and created["tags"] == ["book", "ln"]
    expected = build_spec("seed-layernorm", SMALL)
    assert created["spec"] == expected.model_dump(mode="json")
    assert created["progress"] == {"step": 0, "total": expected.total_steps, "fraction": 0.0}
    # The Location answers with the same experiment.
    assert client.get(response.headers["Location"]).json()["spec"] == created["spec"]
    # One run message for it really sits in the broker's training queue.
    sent = broker_messages.runs_for(created["id"])
    assert len(sent) == 1 and sent[0].queue == TRAINING_QUEUE
    with session_scope(engine) as session:
        stored = experiments.get_experiment(session, created["id"])
        assert stored is not None and stored.dispatched_at is not None


def test_submit_full_spec(client: AppClient) -> None:
    spec = {
        "model": {"hidden": [64, 32], "activation": "relu", "output": "none"},
        "loss": "cross_entropy",
        "optimizer": "adamw",
        "epochs": 2,
        "batch_size": 16,
        "train_limit": 1000,
    }
    created = _submit(client, {**spec, "tags": ["relu"]})
    assert created["preset"] is None and created["tags"] == ["relu"]
    assert created["spec"] == ExperimentSpec.model_validate(spec).model_dump(mode="json")
    assert created["spec"]["lr"] == 0.001  # the optimizer's default, filled in and stored
    # An empty body is the book's baseline.
    baseline = _submit(client, {})
    assert baseline["spec"] == build_spec("seed-baseline").model_dump(mode="json")


def test_idempotency_key_returns_the_same_experiment(
    client: AppClient, broker_messages: BrokerMessageReader
) -> None:
    body = {"preset": "seed-adam", "overrides": SMALL, "name": "retried"}
    first = client.post("/experiments", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post("/experiments", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(broker_messages.runs_for(first.json()["id"])) == 1  # not sent twice

    other = client.post("/experiments", json=body, headers={"Idempotency-Key": "k-2"})
    assert other.json()["id"] != first.json()["id"]

    changed = {**body, "overrides": {**SMALL, "epochs": 2}}
    reused = client.post("/experiments", json=changed, headers={"Idempotency-Key": "k-1"})
    assert reused.status_code == 409
    assert "different request body" in reused.json()["detail"]


def test_list_is_newest_first_with_filters_and_cursor_paging(
    client: AppClient, engine: Engine
) -> None:
    ids = [
        _submit(client, {"preset": "seed-adam", "overrides": SMALL, "tags": tags})["id"]
        for tags in (["a"], ["a", "b"], [], ["b"], ["a"])
    ]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/experiments", params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]

    tagged_a = client.get("/experiments", params={"tag": "a"}).json()["items"]
    assert [e["id"] for e in tagged_a] == [ids[4], ids[1], ids[0]]
    assert [e["id"] for e in client.get("/experiments?tag=nope").json()["items"]] == []

    with session_scope(engine) as session:
        experiments.request_cancel(session, ids[2])
    cancelled = client.get("/experiments", params={"status": "cancelled"}).json()["items"]
    assert [e["id"] for e in cancelled] == [ids[2]]
    queued_b = client.get("/experiments", params={"status": "queued", "tag": "b"}).json()
    assert [e["id"] for e in queued_b["items"]] == [ids[3], ids[1]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "done"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_list_rejects_bad_parameters(client: AppClient, params: dict[str, Any], field: str) -> None:
    response = client.get("/experiments", params=params)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"model": {"activation": "swish"}}, "model.activation", "'leaky_relu'"),
        ({"optimizer": "lbfgs"}, "optimizer", "'adamw'"),
        ({"preset": "seed-adam", "overrides": {"epochs": 0}}, "epochs", "greater than or equal"),
        ({"preset": "seed-adam", "overrides": {"epochs": 1000}}, "epochs", "less than or equal"),
        ({"loss": "bce", "model": {"output": "none"}}, "loss", "raw logits"),
        ({"loss": "cross_entropy"}, "loss", "model.output=none"),
        ({"epochs": 1, "bogus": 1}, "bogus", "unknown field"),
        ({"model": {"hidden": [5000]}}, "model.hidden[0]", "1..4096"),
        ({"preset": "seed-nope"}, "preset", "known presets: seed-baseline"),
        (
            {"preset": "seed-adam", "overrides": {"loss.kind": "x"}},
            "overrides.loss.kind",
            "not a section",
        ),
        ({"preset": "seed-adam", "overrides": {"model.width": 3}}, "model.width", "unknown field"),
        ({"preset": "seed-adam", "epochs": 1}, "epochs", "put them in `overrides`"),
        ({"preset": "seed-adam", "overrides": [1]}, "overrides", "dictionary"),
        ({"tags": ["x" * 101]}, "tags[0]", "at most 100"),
        ({"name": 5}, "name", "string"),
        ({"epochs": 100, "batch_size": 1}, "spec", "600,000"),
    ],
)
def test_bad_specs_are_422_naming_field_and_reason(
    client: AppClient, body: dict[str, Any], field: str, reason: str
) -> None:
    response = client.post("/experiments", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert reason in errors[0]["reason"]
    assert field in response.json()["detail"]
    assert "Traceback" not in response.text


def test_malformed_bodies_are_422(client: AppClient) -> None:
    headers = {"content-type": "application/json"}
    broken = client.post("/experiments", content=b"{not json", headers=headers)
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["errors"][0]["reason"]
    a_list = client.post("/experiments", content=b"[1, 2]", headers=headers)
    assert a_list.status_code == 422
    assert a_list.json()["errors"][0]["field"] == "body"
    too_long_key = client.post("/experiments", json={}, headers={"Idempotency-Key": "k" * 201})
    assert too_long_key.status_code == 422
    assert too_long_key.json()["errors"][0]["field"] == "Idempotency-Key"


def test_oversized_bodies_are_413(client: AppClient, engine: Engine) -> None:
    # The test settings allow 64 KiB.
    big = {"name": "x", "tags": ["y" * 60] * 32, "overrides": {"pad": "z" * 70_000}}
    declared = client.post("/experiments", json=big)
    assert declared.status_code == 413
    assert "65,536 bytes" in declared.json()["detail"]

    async def chunks() -> Any:  # no Content-Length: counted as it streams in
        for _ in range(20):
            yield b" " * 8192

    streamed = client.post(
        "/experiments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "content-length" not in streamed.request.headers
    with session_scope(engine) as session:
        assert experiments.list_experiments(session, limit=10)[0] == []  # nothing was stored


def test_unknown_ids_are_404(client: AppClient) -> None:
    for response in (
        client.get("/experiments/nopenope"),
        client.get("/experiments/nopenope/loss"),
        client.get("/experiments/nopenope/predictions"),
        client.post("/experiments/nopenope/cancel", json={}),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "no experiment with id 'nopenope'"}
    assert client.get("/no/such/route").status_code == 404


def test_get_shows_progress_worker_and_outcome(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    with session_scope(engine) as session:
        runs.heartbeat(session, experiment_id, attempt, step=500, total_steps=2000, device="cpu")
    live = client.get(f"/experiments/{experiment_id}").json()
    assert live["status"] == "running" and live["worker"] == "test:1" and live["device"] == "cpu"
    assert live["progress"] == {"step": 500, "total": 2000, "fraction": 0.25}
    assert live["started_at"] is not None and live["finished_at"] is None
    assert live["created_at"].endswith("Z") or live["created_at"].endswith("+00:00")

    metrics = {"test_accuracy": 0.91, "test_loss": float("nan")}
    assert finish(engine, experiment_id, attempt, Status.succeeded, metrics=metrics, step=2000)
    done = client.get(f"/experiments/{experiment_id}").json()
    assert done["status"] == "succeeded" and done["finished_at"] is not None
    assert done["metrics"] == {"test_accuracy": 0.91, "test_loss": None}  # NaN can't be JSON
    assert done["progress"]["fraction"] == 1.0


def test_cancel_semantics(client: AppClient, engine: Engine) -> None:
    queued = _submit(client, {"preset": "seed-adam", "overrides": SMALL})
    response = client.post(f"/experiments/{queued['id']}/cancel", json={})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    # A worker that gets the message later finds nothing to run.
    with session_scope(engine) as session:
        assert runs.claim(session, queued["id"], worker="late", stale_after_s=60) is None

    experiment_id, attempt = running(engine)
    asked = client.post(f"/experiments/{experiment_id}/cancel", json={})
    assert asked.status_code == 202
    assert asked.json()["status"] == "running" and asked.json()["cancel_requested"] is True
    with session_scope(engine) as session:  # the worker learns it at its next beat
        assert runs.heartbeat(session, experiment_id, attempt, step=10, total_steps=2000) == (
            True,
            True,
        )
    assert finish(engine, experiment_id, attempt, Status.cancelled)

    for finished in (queued["id"], experiment_id):
        again = client.post(f"/experiments/{finished}/cancel", json={})
        assert again.status_code == 409
        assert "already finished" in again.json()["detail"]


def test_a_wrapped_spec_is_422_naming_the_shapes_taken(client: AppClient) -> None:
    response = client.post("/experiments", json={"spec": {"epochs": 1}})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "spec"
    assert "top level" in error["reason"] and '"preset"' in error["reason"], error


@pytest.mark.parametrize(
    ("body", "field", "meant"),
    [
        ({"epoch": 1}, "epoch", "epochs"),
        ({"preset": "seed-baseline", "overrides": {"epoch": 1}}, "epoch", "epochs"),
        ({"model": {"hiden": [10]}}, "model.hiden", "model.hidden"),
    ],
)
def test_an_unknown_field_close_to_one_says_which(
    client: AppClient, body: dict[str, Any], field: str, meant: str
) -> None:
    response = client.post("/experiments", json=body)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == field
    assert error["reason"] == f"unknown field: not part of the spec (did you mean {meant}?)"


def test_an_unknown_field_close_to_none_keeps_its_reason(client: AppClient) -> None:
    response = client.post("/experiments", json={"zzzz": 1})
    assert response.json()["errors"][0]["reason"] == "unknown field: not part of the spec (a typo?)"
