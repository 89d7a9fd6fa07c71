"""The product's spine, end to end over HTTP: spec -> store -> queue -> worker -> engine -> JSON.

Runs against a production stack (Postgres, Redis, separate worker) and the embedded default.
"""

from __future__ import annotations

import time

import pytest

from core.presets import BOOK_CHAIN
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

SMALL = {"epochs": 1, "train_limit": 2000, "test_limit": 500}


def test_book_presets_run_to_success(stack: Stack) -> None:
    created = [
        stack.submit({"preset": name, "overrides": SMALL, "name": name, "tags": ["book"]})
        for name in BOOK_CHAIN
    ]
    assert all(c["status"] == "queued" for c in created)
    finished = [stack.wait_terminal(c["id"]) for c in created]
    assert [f["status"] for f in finished] == ["succeeded"] * 5, [f["error"] for f in finished]

    with stack.client() as client:
        for experiment in finished:
            loss = client.get(f"/experiments/{experiment['id']}/loss").json()
            # 2000 steps, one point every 10: exactly 200 points at 10, 20, ..., 2000.
            assert loss["steps"] == list(range(10, 2001, 10))
            assert len(loss["values"]) == 200
            assert all(v is not None and v >= 0 for v in loss["values"])

            records = client.get(
                f"/experiments/{experiment['id']}/predictions", params={"records": "19"}
            ).json()["records"]
            assert len(records) == 1 and records[0]["index"] == 19
            assert records[0]["label"] == 4  # the book's record 19 is a handwritten 4
            assert len(records[0]["outputs"]) == 10

            metrics = experiment["metrics"]
            assert 0.0 <= metrics["test_accuracy"] <= 1.0
            assert experiment["progress"]["step"] == experiment["progress"]["total"] == 2000

        # The newest comes first, and the tag filter finds all five.
        listed = client.get("/experiments", params={"tag": "book", "limit": 200}).json()
        ids = [item["id"] for item in listed["items"]]
        assert set(ids) >= {c["id"] for c in created}
    layernorm = finished[-1]["metrics"]["test_accuracy"]
    baseline = finished[0]["metrics"]["test_accuracy"]
    assert layernorm > baseline  # the book's point, even on a small subset


def test_cancel_running_keeps_partial_curve(stack: Stack) -> None:
    big = stack.submit({"preset": "seed-layernorm", "overrides": {"epochs": 3}})
    running = stack.wait_for(
        big["id"], lambda e: e["status"] == "running" and e["progress"]["step"] > 500
    )
    assert running["worker"]
    with stack.client() as client:
        asked = time.monotonic()
        response = client.post(f"/experiments/{big['id']}/cancel", json={})
        assert response.status_code in (200, 202), response.text
    cancelled = stack.wait_terminal(big["id"], timeout=30)
    took = time.monotonic() - asked
    assert cancelled["status"] == "cancelled"
    assert took < 10, f"cancel took {took:.1f}s"
    with stack.client() as client:
        loss = client.get(f"/experiments/{big['id']}/loss").json()
        # The partial curve is kept: consecutive points from step 10, none after the stop.
        assert len(loss["steps"]) >= 50
        assert loss["steps"] == list(range(10, 10 * len(loss["steps"]) + 1, 10))
        assert loss["steps"][-1] < cancelled["progress"]["total"]
        # A finished experiment can't be cancelled again.
        assert client.post(f"/experiments/{big['id']}/cancel", json={}).status_code == 409


def test_cancel_queued_is_immediate_and_idempotent_post(stack: Stack) -> None:
    key = f"retry-{time.time_ns()}"
    body = {"preset": "seed-baseline", "overrides": SMALL, "name": "retried"}
    first = stack.submit(body, **{"Idempotency-Key": key})
    again = stack.submit(body, **{"Idempotency-Key": key})
    assert again["id"] == first["id"]
    with stack.client() as client:
        # Any queued experiment: the worker is busy with at most one run at a time.
        blockers = [
            stack.submit({"preset": "seed-adam", "overrides": {"epochs": 1}}) for _ in range(2)
        ]
        queued = stack.submit({"preset": "seed-baseline", "overrides": SMALL})
        response = client.post(f"/experiments/{queued['id']}/cancel", json={})
        assert response.status_code in (200, 202)
        assert client.get(f"/experiments/{queued['id']}").json()["status"] == "cancelled"
        for blocker in blockers:
            client.post(f"/experiments/{blocker['id']}/cancel", json={})
    assert stack.wait_terminal(first["id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preset": "seed-nope"}, "preset"),
        ({"preset": "seed-adam", "overrides": {"epochs": 0}}, "epochs"),
        ({"preset": "seed-adam", "overrides": {"epochs": 1000}}, "epochs"),
        ({"loss": "bce", "model": {"output": "none"}}, "loss"),
        ({"model": {"activation": "swish"}}, "activation"),
        ({"epochs": 1, "bogus": 1}, "bogus"),
    ],
)
def test_bad_specs_are_422_naming_the_field(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    with stack.client() as client:
        response = client.post("/experiments", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
    assert "Traceback" not in response.text


def test_unknown_ids_and_bad_records(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/experiments/does-not-exist").status_code == 404
        assert client.get("/experiments/does-not-exist/loss").status_code == 404
        assert client.post("/experiments/does-not-exist/cancel", json={}).status_code == 404
        assert (
            client.post(
                "/experiments", content=b"{not json", headers={"content-type": "application/json"}
            ).status_code
            == 422
        )
        assert client.get("/healthz").status_code == 200
