"""GET /experiments/{id}/events: Server-Sent Events of loss points, progress and status, and
Last-Event-ID resumption with no gap and no repeat, on both backends.

The in-process client returns a response once the stream ends, so a live run is played by a
thread that writes points through the store while the stream is open, then finishes it."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from api.routes import events
from core.store.models import Status
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, small_spec
from tests.core.store.helpers import finish

Event = tuple[int, str, dict[str, Any]]


def parse(text: str) -> tuple[list[Event], int | None]:
    """Events (id, name, data) and the stream's retry hint."""
    found: list[Event] = []
    retry = None
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "retry" in fields:
            retry = int(fields["retry"])
        if "event" in fields:
            found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return found, retry


def loss_steps(found: list[Event]) -> list[int]:
    return [s for _, kind, data in found if kind == "loss" for s in data["steps"]]


def stream(client: AppClient, experiment_id: str, **headers: str) -> list[Event]:
    response = client.get(f"/experiments/{experiment_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    found, retry = parse(response.text)
    assert retry == events.RETRY_MS
    return found


def test_a_finished_run_streams_everything_then_ends(
    client: AppClient, monkeypatch: pytest.MonkeyPatch, runs: RecordedRuns
) -> None:
    monkeypatch.setattr(events, "BATCH", 7)  # several loss events from one poll
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    found = stream(client, run.id)
    kinds = [kind for _, kind, _ in found]
    assert kinds[0] == "status" and kinds[-1] == "end"
    assert found[0][2] == {"status": "succeeded", "error": None}
    assert found[-1][2]["status"] == "succeeded"
    assert loss_steps(found) == run.steps
    assert kinds.count("loss") == -(-len(run.steps) // 7)
    progress = [data for _, kind, data in found if kind == "progress"]
    assert progress == [{"step": 200, "total_steps": 200}]
    # Each event's id is the last loss step sent so far: non-decreasing, and a loss event's
    # id is its own last step.
    ids = [i for i, _, _ in found]
    assert ids == sorted(ids) and ids[-1] == run.steps[-1]
    assert all(i == data["steps"][-1] for i, kind, data in found if kind == "loss")
    values = [v for _, kind, data in found if kind == "loss" for v in data["values"]]
    assert values == pytest.approx(run.values, rel=1e-6)


@pytest.mark.parametrize("cut", [0, 1, 3])
def test_last_event_id_resumes_exactly_after_the_last_point(
    client: AppClient, monkeypatch: pytest.MonkeyPatch, cut: int, runs: RecordedRuns
) -> None:
    monkeypatch.setattr(events, "BATCH", 5)
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    first = stream(client, run.id)
    loss_events = [e for e in first if e[1] == "loss"]
    last_id = loss_events[cut][0]
    seen = [s for _, _, data in loss_events[: cut + 1] for s in data["steps"]]
    rest = stream(client, run.id, **{"Last-Event-ID": str(last_id)})
    assert seen + loss_steps(rest) == run.steps  # no gap, no repeat
    assert rest[-1][1] == "end"
    by_query = client.get(f"/experiments/{run.id}/events", params={"since_step": last_id})
    assert loss_steps(parse(by_query.text)[0]) == loss_steps(rest)


def test_a_live_run_streams_points_as_they_are_written(
    client: AppClient, engine: Engine, monkeypatch: pytest.MonkeyPatch, runs: RecordedRuns
) -> None:
    monkeypatch.setattr(events, "POLL_S", 0.05)
    spec = small_spec()
    experiment_id, attempt = runs.start(spec)
    steps = [10 * (i + 1) for i in range(20)]
    values = np.linspace(1.0, 0.1, 20).tolist()
    runs.write_points(experiment_id, attempt, steps[:4], values[:4], spec.total_steps)

    def worker() -> None:
        for start_at in range(4, 20, 4):
            time.sleep(0.3)
            chunk = slice(start_at, start_at + 4)
            runs.write_points(experiment_id, attempt, steps[chunk], values[chunk], spec.total_steps)
        time.sleep(0.3)
        assert finish(engine, experiment_id, attempt, Status.succeeded, step=spec.total_steps)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        found = stream(client, experiment_id)
    finally:
        thread.join()
    assert found[0][2]["status"] == "running"
    assert loss_steps(found) == steps
    assert sum(kind == "loss" for _, kind, _ in found) >= 3  # arrived over several polls
    progress = [d["step"] for _, kind, d in found if kind == "progress"]
    assert progress == sorted(progress) and progress[-1] == spec.total_steps
    statuses = [d["status"] for _, kind, d in found if kind == "status"]
    assert statuses == ["running", "succeeded"]
    assert found[-1][1] == "end"


def test_a_failed_run_ends_with_its_error(
    client: AppClient, engine: Engine, runs: RecordedRuns
) -> None:
    experiment_id, attempt = runs.start(small_spec())
    runs.write_points(experiment_id, attempt, [10, 20], [1.0, 0.9], 200)
    assert finish(engine, experiment_id, attempt, Status.failed, error="CUDA out of memory")
    found = stream(client, experiment_id)
    assert found[-1][1:] == ("end", {"status": "failed", "error": "CUDA out of memory"})
    assert loss_steps(found) == [10, 20]


def test_unknown_experiment_and_bad_resume_ids(client: AppClient, runs: RecordedRuns) -> None:
    assert client.get("/experiments/nopenope/events").status_code == 404
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    bad = client.get(f"/experiments/{run.id}/events", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "last-event-id"
    negative = client.get(f"/experiments/{run.id}/events", params={"since_step": -1})
    assert negative.status_code == 422
