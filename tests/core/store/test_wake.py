"""Waking a sweep's driver (core/store/wake.py): on PostgreSQL a transaction that announces
wakes a listening Waker when it commits, not before and not if it rolls back; a listening
connection that the server drops costs a poll, and the Waker listens again; on SQLite it
sleeps the poll interval."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.store import wake
from core.store.session import make_engine
from tests.conftest import ADMIN_URL

QUICK_S = 0.3


def test_a_commit_wakes_a_listener_at_once_and_a_rollback_does_not(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        waker = wake.Waker(engine)
        started = time.monotonic()
        assert waker.wait(QUICK_S) is False  # SQLite: the poll it replaces
        assert time.monotonic() - started >= QUICK_S
        return
    waker = wake.Waker(engine)
    try:
        assert waker.wait(0.01) is False  # listening from here on; nothing announced
        with Session(engine) as session:
            wake.announce(session)
            assert waker.wait(QUICK_S) is False  # not before the commit
            session.rollback()
        assert waker.wait(QUICK_S) is False  # nor after a rollback
        with Session(engine) as session:
            wake.announce(session)
            commit = threading.Timer(0.2, session.commit)
            commit.start()
            started = time.monotonic()
            assert waker.wait(10.0) is True
            woken_after = time.monotonic() - started
            commit.join()
        assert woken_after < 2.0, woken_after  # at the commit, not at the timeout
        assert waker.wait(0.05) is False  # one announcement, one wake-up
    finally:
        waker.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite never listens
def test_a_dropped_listening_connection_costs_a_poll_then_listens_again(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setattr(wake, "RECONNECT_S", 0.0)
    engine = make_engine(database_url)
    waker = wake.Waker(engine)
    try:
        assert waker.wait(0.01) is False
        pid = waker._connection.info.backend_pid
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert waker.wait(QUICK_S) is False  # the loss is seen, not raised
        assert waker.wait(0.01) is False  # and it listens again
        assert waker._connection is not None and waker._connection.info.backend_pid != pid
        with Session(engine) as session:
            wake.announce(session)
            session.commit()
        assert waker.wait(10.0) is True
    finally:
        waker.close()
        engine.dispose()
