"""Quotas and rate limits through the app, on SQLite and Postgres: exact admission under
concurrency over real HTTP (uvicorn), 429 with Retry-After and a body naming the limit, and a
cap on the event streams one key holds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from limits import parse
from sqlalchemy import Engine

from api.app import create_app
from api.ratelimit import MovingWindow
from core.cost import estimate
from core.keys import Role
from core.presets import build_spec
from core.settings import Settings
from core.store import ablations, experiments, keys
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.api.live_server import serving
from tests.conftest import free_port

SMALL = {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 500, "test_limit": 100}}


def _key(engine: Engine, name: str) -> dict[str, str]:
    with session_scope(engine) as session:
        _, token = keys.create_key(session, name, Role.member)
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def _served(settings: Settings) -> Iterator[str]:
    """The app under a real uvicorn in a thread; yields its base URL."""
    port = free_port()
    app = create_app(
        settings.model_copy(update={"trusted_hosts": ["127.0.0.1"], "auth": "required"}),
        lifespan_hooks=[],
    )
    with serving(app, port) as url:
        yield url


def test_twenty_concurrent_posts_against_a_quota_of_five_admit_five(
    settings: Settings, engine: Engine
) -> None:
    alice = _key(engine, "alice")
    with _served(settings.model_copy(update={"quota_active_experiments": 5})) as url:
        start = threading.Barrier(20)

        def submit(i: int) -> httpx.Response:
            start.wait()
            return httpx.post(f"{url}/experiments", json=SMALL, headers=alice, timeout=60)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(submit, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 5 + [429] * 15, [a.text for a in answers if a.status_code >= 500]
    refused = [a for a in answers if a.status_code == 429]
    assert all(int(a.headers["retry-after"]) > 0 for a in refused)
    assert {(a.json()["quota"], a.json()["limit"], a.json()["current"]) for a in refused} == {
        ("active_experiments", 5, 5)
    }
    with session_scope(engine) as session:
        page, _ = experiments.list_experiments(session, limit=100)
    assert len(page) == 5 and {e.owner for e in page} == {"alice"}


def _guarded(settings: Settings, **changes: object) -> AppClient:
    return app_client(
        create_app(settings.model_copy(update={"auth": "required", **changes}), lifespan_hooks=[])
    )  # type: ignore[return-value]


def test_daily_cpu_hours_and_ablation_size_quotas(settings: Settings, engine: Engine) -> None:
    alice = _key(engine, "alice")
    # Allow two and a half of these runs a day.
    one_run = estimate(build_spec(SMALL["preset"], SMALL["overrides"])).cpu_hours
    daily = round(2.5 * one_run, 8)
    with app_client(
        create_app(
            settings.model_copy(
                update={
                    "auth": "required",
                    "quota_daily_cpu_hours": daily,
                    "quota_ablation_cells": 4,
                }
            ),
            lifespan_hooks=[],
        )
    ) as api:
        answers = [api.post("/experiments", json=SMALL, headers=alice) for _ in range(4)]
        assert [a.status_code for a in answers] == [201, 201, 429, 429]
        body = answers[-1].json()
        assert body["quota"] == "daily_cpu_hours" and body["limit"] == daily
        assert body["current"] == pytest.approx(2 * one_run, rel=1e-3)
        # The day's spending ages out one run at a time: retry when the first is a day old.
        assert 86_000 < int(answers[-1].headers["retry-after"]) <= 86_400
        big = api.post(
            "/ablations",
            json={"preset": "seed-adam", "overrides": SMALL["overrides"], "seeds": 5},
            headers=alice,
        )
        assert big.status_code == 429 and big.json()["quota"] == "ablation_cells"
        assert big.json()["current"] == 5 and big.json()["limit"] == 4
    with session_scope(engine) as session:
        assert ablations.list_ablations(session)[0] == []  # nothing of a refused ablation is kept


def test_rate_limits_per_key_and_per_address(settings: Settings, engine: Engine) -> None:
    alice, bob = _key(engine, "alice"), _key(engine, "bob")
    limited = settings.model_copy(
        update={"auth": "required", "rate_limit_key": "5/minute", "rate_limit_address": "8/minute"}
    )
    with app_client(create_app(limited, lifespan_hooks=[])) as local:
        # The first request's key is not known valid yet: it counts against the address
        # (unverified); the five after it against the key.
        answers = [local.get("/experiments", headers=alice).status_code for _ in range(7)]
        assert answers == [200] * 6 + [429]
        over = local.get("/experiments", headers=alice)
        assert int(over.headers["retry-after"]) > 0
        assert over.json()["scope"] == "key" and over.json()["limit"] == "5 per 1 minute"
        assert local.get("/experiments", headers=bob).status_code == 200  # its own count
        assert local.get("/healthz").status_code == 200  # probes are never limited
    # From another machine the address is counted too, whatever keys it presents.
    with app_client(create_app(limited, lifespan_hooks=[]), ("10.0.0.7", 4321)) as remote:
        codes = [
            remote.get("/experiments", headers=alice if i % 2 else bob).status_code
            for i in range(9)
        ]
        assert codes[-1] == 429
        assert remote.get("/experiments", headers=bob).json()["scope"] == "address"


def test_a_key_holds_a_bounded_number_of_event_streams(settings: Settings, engine: Engine) -> None:
    alice = _key(engine, "alice")
    with _served(settings.model_copy(update={"max_event_streams": 1})) as url:
        queued = httpx.post(f"{url}/experiments", json=SMALL, headers=alice).json()["id"]
        events = f"{url}/experiments/{queued}/events"
        with httpx.Client(timeout=30) as client:
            with client.stream("GET", events, headers=alice) as first:
                assert first.status_code == 200
                second = httpx.get(events, headers=alice, timeout=10)
                assert second.status_code == 429 and "event streams" in second.json()["detail"]
            # Closing the first gives its slot back (the server notices within a poll).
            for _ in range(50):
                third = client.send(client.build_request("GET", events, headers=alice), stream=True)
                try:
                    if third.status_code == 200:
                        break
                finally:
                    third.close()
                threading.Event().wait(0.2)
            assert third.status_code == 200


def test_the_moving_window_admits_the_amount_per_period_and_forgets_idle_callers() -> None:
    now = [100.0]
    window = MovingWindow(clock=lambda: now[0])
    item = parse("3/minute")
    assert [window.hit(item, "key", "a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.hit(item, "key", "a") == pytest.approx(60.0)  # refused: not counted
    assert window.hit(item, "key", "b") == 0.0  # its own count
    now[0] += 30
    assert window.hit(item, "key", "a") == pytest.approx(30.0)
    now[0] += 30  # the first three are a minute old: out of the window
    assert [window.hit(item, "key", "a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.hit(item, "key", "a") == pytest.approx(60.0)
    # Callers that stopped a period ago are dropped at the next sweep.
    window.SWEEP_EVERY = 1
    now[0] += 61
    window.hit(item, "key", "c")
    assert len(window) == 1
