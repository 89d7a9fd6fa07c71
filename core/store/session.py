"""Engines and sessions for SQLite and PostgreSQL.

SQLite is the embedded default and is shared by the API, the reaper and a worker process, so
every connection gets WAL (readers never block the writer), a 30 s busy timeout (writers queue
instead of failing with "database is locked") and enforced foreign keys. PostgreSQL
connections are pinged before use, so a restarted server costs one reconnect, not an error.

Engines are made here and owned by whoever starts the process (the app, a worker, a CLI
command), which passes them on explicitly: there is no engine hidden in a global.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_S = 30
# Connections kept open per process. The API answers up to 40 requests at once in its thread
# pool; with fewer pooled connections than requests in flight, each one past the pool opened
# a new PostgreSQL connection (a backend started) and closed it again: about 8 % of the API's
# CPU under 20 concurrent POSTs. Connections are opened on demand, so idle processes hold few.
POOL_SIZE = 20


def make_engine(url: str) -> Engine:
    """A new engine for `url`, configured for concurrent use by API, reaper and workers."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    in_memory = not database or database == ":memory:"
    if not in_memory:
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        # An in-memory database lives in one connection; every session must share it.
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # With WAL, NORMAL is durable across application crashes, and much faster.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.
    Objects stay readable after the commit (no expiry), so callers can return them."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bounded_idle_session(engine: Engine, idle_s: float) -> Session:
    """A session whose PostgreSQL transactions end (the server closes the connection) when
    the process leaves one idle for `idle_s`: a process paused in the middle of one (SIGSTOP,
    a frozen VM) would otherwise hold its row locks, and everyone waiting on them, until it
    wakes. SQLite has one process's writer at a time anyway and gets a plain session."""
    session = Session(engine)
    if engine.dialect.name == "postgresql":
        setting = text(f"SET LOCAL idle_in_transaction_session_timeout = {int(idle_s * 1000)}")

        @event.listens_for(session, "after_begin")
        def _bound(_s: Session, _t: SessionTransaction, connection: Connection) -> None:
            connection.execute(setting)

    return session
