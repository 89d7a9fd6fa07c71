"""Polled state within TRAINLAB_POLL_FRESH_S: many polls of one run cost one store read per
window, a change made elsewhere shows once the window has passed, and a change made through
the same API process (a cancel, a delete) shows at once. On SQLite and Postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event

from api.app import create_app
from core.settings import Settings
from core.store import runs
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.core.store.helpers import running, write_loss

WINDOW_S = 0.4


@pytest.fixture
def windowed_app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"poll_fresh_s": WINDOW_S}), lifespan_hooks=[])


@pytest.fixture
def windowed(windowed_app: FastAPI) -> Iterator[AppClient]:
    with app_client(windowed_app) as client:
        yield client


class StatementCounter:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


def _state(client: AppClient, experiment_id: str) -> dict[str, object]:
    response = client.get(f"/experiments/{experiment_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _step(client: AppClient, experiment_id: str) -> int:
    progress = _state(client, experiment_id)["progress"]
    assert isinstance(progress, dict)
    return int(progress["step"])


def test_polls_within_the_window_read_the_store_once(
    windowed: AppClient, windowed_app: FastAPI, engine: Engine
) -> None:
    experiment_id, attempt = running(engine)
    # The window opens when the first read begins: a slow machine may cross into a new one.
    started = time.monotonic()
    _state(windowed, experiment_id)
    counter = StatementCounter(windowed_app.state.engine)
    answers = [_state(windowed, experiment_id) for _ in range(20)]
    if time.monotonic() - started < WINDOW_S:
        assert counter.count == 0
    assert all(answer == answers[0] for answer in answers)

    with session_scope(engine) as session:  # as a worker does, from another process
        runs.heartbeat(session, experiment_id, attempt, step=123, total_steps=1000)
    time.sleep(WINDOW_S + 0.05)
    assert _step(windowed, experiment_id) == 123
    assert counter.count > 0


def test_live_loss_polls_within_the_window_read_the_store_once(
    windowed: AppClient, windowed_app: FastAPI, engine: Engine
) -> None:
    experiment_id, attempt = running(engine)
    write_loss(engine, experiment_id, attempt, [10, 20], [0.5, 0.4])
    path = f"/experiments/{experiment_id}/loss"
    started = time.monotonic()
    assert windowed.get(path, params={"since_step": 10}).json()["steps"] == [20]
    counter = StatementCounter(windowed_app.state.engine)
    answers = [windowed.get(path, params={"since_step": 10}).json() for _ in range(20)]
    if time.monotonic() - started < WINDOW_S:
        assert counter.count == 0
    assert all(answer["steps"] == [20] for answer in answers)

    write_loss(engine, experiment_id, attempt, [30], [0.3])  # the worker's next flush
    time.sleep(WINDOW_S + 0.05)
    assert windowed.get(path, params={"since_step": 10}).json()["steps"] == [20, 30]
    assert counter.count > 0


def test_a_change_through_this_process_shows_at_once(windowed: AppClient, engine: Engine) -> None:
    experiment_id, _ = running(engine)
    assert _state(windowed, experiment_id)["cancel_requested"] is False
    cancel = windowed.post(f"/experiments/{experiment_id}/cancel", json={})
    assert cancel.status_code in (200, 202), cancel.text
    assert _state(windowed, experiment_id)["cancel_requested"] is True


def test_a_window_of_zero_reads_every_time(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    _state(client, experiment_id)
    with session_scope(engine) as session:
        runs.heartbeat(session, experiment_id, attempt, step=7, total_steps=1000)
    assert _step(client, experiment_id) == 7
