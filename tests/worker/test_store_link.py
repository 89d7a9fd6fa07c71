"""The job's writes against real stores that fail for real: a connection terminated by the
server in the middle of a write is written again; a store that doesn't answer is waited for,
with growing pauses, until the patience runs out; a write the store refuses is not retried."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from core.store.session import make_engine
from tests.conftest import ADMIN_URL, POSTGRES_URL, require_postgres
from tests.worker.test_heartbeat import UNREACHABLE_URL
from worker.store_link import StoreGone, StoreLink, StoreRefused


class FakeTime:
    """A clock that the link's pauses move forward, so patience is tested without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_a_connection_killed_mid_write_is_written_again() -> None:
    require_postgres()
    time = FakeTime()
    engine = make_engine(POSTGRES_URL)
    link = StoreLink(engine, patience_s=30, sleep=time.sleep, clock=time.clock)
    tries: list[int] = []

    def write(session: Session) -> int:
        pid = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        tries.append(pid)
        if len(tries) == 1:  # the server drops this connection in the middle of the write
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return int(session.execute(text("SELECT 41 + 1")).scalar_one())

    try:
        assert link.run("a test write", write) == 42
    finally:
        engine.dispose()
    assert len(tries) == 2 and tries[0] != tries[1]  # a fresh connection the second time
    assert len(time.pauses) == 1


def test_an_unreachable_store_is_waited_for_until_the_patience_runs_out() -> None:
    time = FakeTime()
    unreachable = make_engine(UNREACHABLE_URL)
    link = StoreLink(unreachable, patience_s=20, sleep=time.sleep, clock=time.clock)
    with pytest.raises(StoreGone, match="store unreachable for 20 s while writing a test write"):
        link.run("a test write", lambda session: session.execute(text("SELECT 1")))
    assert time.now == pytest.approx(20)
    # Backoff: each pause about twice the one before (jitter ±20%), capped.
    assert time.pauses[1] > time.pauses[0] and max(time.pauses) <= 6.0


def test_a_refused_write_is_not_tried_again(engine: Engine) -> None:
    tries: list[Any] = []

    def write(session: Session) -> None:
        tries.append(1)
        # Both stores refuse this for good: a NOT NULL column given NULL (IntegrityError).
        session.execute(
            text("INSERT INTO loss_points (experiment_id, step, value) VALUES ('x', 1, NULL)")
        )

    with pytest.raises(StoreRefused, match="IntegrityError"):
        StoreLink(engine, patience_s=30).run("a bad row", write)
    assert len(tries) == 1
