"""GET /changes, the feed the dashboard refreshes its lists on: every kind of change to what
the lists show moves the fingerprint; the stream sends the current version at once and a new
one when it moves, lasts at most TRAINLAB_MAX_STREAM_S, needs a key where keys are required
and counts against the caller's stream cap. On SQLite and Postgres."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.app import create_app
from api.services.changes import ChangeWatch, read_mark
from core.keys import Role
from core.settings import Settings
from core.store import experiments, keys, retention, runs
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.core.store.helpers import finish, queued, running

POLL_S = 0.1


def changes(text: str) -> list[dict[str, Any]]:
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "changes":
            found.append(json.loads(fields["data"]))
    return found


def test_every_kind_of_change_moves_the_fingerprint(engine: Engine) -> None:
    seen = [read_mark(engine).version]

    def moved(what: str) -> None:
        version = read_mark(engine).version
        assert version != seen[-1], f"{what} did not move the fingerprint"
        seen.append(version)

    assert read_mark(engine).version == seen[-1]  # nothing changed, same version
    experiment_id, attempt = running(engine)
    moved("a new, claimed experiment")
    with session_scope(engine) as session:
        runs.heartbeat(session, experiment_id, attempt, step=10, total_steps=100)
    moved("progress")
    with session_scope(engine) as session:
        experiments.request_cancel(session, experiment_id)
    moved("a cancel request")
    before = read_mark(engine).ended
    assert finish(engine, experiment_id, attempt, Status.cancelled)
    moved("an end")
    assert read_mark(engine).ended == before + 1
    with session_scope(engine) as session:
        retention.delete_experiment(session, experiment_id, cancel=False)
    moved("a deletion")


def _app(settings: Settings, engine: Engine, **update: Any) -> FastAPI:
    app = create_app(settings.model_copy(update=update), lifespan_hooks=[])
    app.state.change_watch = ChangeWatch(engine, every_s=POLL_S)
    return app


@pytest.fixture
def short(settings: Settings, engine: Engine) -> Iterator[AppClient]:
    with app_client(_app(settings, engine, max_stream_s=1.5)) as api:
        yield api


def test_the_feed_sends_the_version_then_each_change_and_closes_in_time(
    short: AppClient, engine: Engine
) -> None:
    queued(engine)
    done = threading.Event()

    def play() -> None:  # while the stream is open: a new run, then it trains, then it ends
        time.sleep(0.4)
        experiment_id, attempt = running(engine)
        time.sleep(0.4)
        finish(engine, experiment_id, attempt, Status.succeeded)
        done.set()

    player = threading.Thread(target=play)
    started = time.monotonic()
    player.start()
    response = short.get("/changes")
    took = time.monotonic() - started
    player.join(timeout=10)
    assert done.is_set()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert 1.0 <= took < 5.0  # bounded by max_stream_s (1.5 s)
    found = changes(response.text)
    assert found[0]["experiments"] == 1 and found[0]["ended"] == 0
    versions = [c["version"] for c in found]
    assert len(set(versions)) == len(versions) >= 3  # only changes, each once
    assert found[-1]["experiments"] == 2 and found[-1]["ended"] == 1


def test_the_feed_needs_a_key_and_counts_against_the_stream_cap(
    settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        _, token = keys.create_key(session, "carol", Role.viewer)
    app = _app(settings, engine, auth="required", max_stream_s=0.5, max_event_streams=1)
    with app_client(app) as api:
        assert api.get("/changes").status_code == 401
        carol = {"Authorization": f"Bearer {token}"}
        slots = app.state.change_slots
        (key,) = [k for k in _key_ids(engine) if k]
        assert slots.acquire(key)  # the caller's one stream is taken
        refused = api.get("/changes", headers=carol)
        assert refused.status_code == 429 and "event streams" in refused.json()["detail"]
        slots.release(key)
        assert changes(api.get("/changes", headers=carol).text)
        assert slots.held(key) == 0  # given back when the stream ended
        # The per-experiment streams are counted apart: the feed took none of them.
        assert app.state.stream_slots.held(key) == 0


def _key_ids(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [k.id for k in keys.list_keys(session)]
