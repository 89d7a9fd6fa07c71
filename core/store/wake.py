"""Waking a sweep's driver when something it waits for is stored, on PostgreSQL.

A sweep's run waits at a judged rung until the driver has judged it (worker/rungs.py), and the
next trial starts once the driver has seen a run end: each wait was the driver's poll interval
(api/background/sweeps.py WAKE_S) on average half over. On PostgreSQL the worker's transaction
that stores a rung or ends a run also NOTIFYs (delivered at its commit, dropped with a
rollback), and the driver LISTENs on a connection of its own, so it looks at once. The poll
stays as it was: a notification lost to a dropped connection or a restarted server costs one
interval, as before, and SQLite, which has no NOTIFY, polls.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

logger = logging.getLogger(__name__)

CHANNEL = "trainlab_sweep_activity"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
# After a failed connection, the listener tries again at most this often (it polls meanwhile).
RECONNECT_S = 5.0


def announce(session: Session) -> None:
    """Wake the drivers listening once this transaction commits (PostgreSQL; else nothing)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)


class Waker:
    """`wait(timeout)`: back at the first notification, else after `timeout`. On SQLite (or
    while the server is away) it sleeps the timeout, which is the poll it replaces."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listens = engine.dialect.name == "postgresql"
        self._connection: Any = None  # psycopg.Connection, LISTENing, autocommit
        self._failed_at = float("-inf")

    def wait(self, timeout: float) -> bool:
        """True when woken by a notification."""
        connection = self._listening()
        if connection is None:
            time.sleep(timeout)
            return False
        try:
            woken = any(True for _ in connection.notifies(timeout=timeout, stop_after=1))
            # One wake-up stands for those already here too (the driver looks at everything).
            for _ in connection.notifies(timeout=0):
                pass
            return woken
        except Exception as exc:  # a dropped connection, a restarted server
            logger.info("sweep wake-ups: listening connection lost (%s); polling", exc)
            self.close()
            self._failed_at = time.monotonic()
            return False

    def _listening(self) -> Any:
        if self._connection is not None or not self.listens:
            return self._connection
        if time.monotonic() - self._failed_at < RECONNECT_S:
            return None
        try:
            pooled = self.engine.raw_connection()
            connection: Any = pooled.driver_connection
            pooled.detach()  # held for good, outside the pool
            connection.rollback()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:
            logger.info("sweep wake-ups: cannot listen (%s); polling", exc)
            self._failed_at = time.monotonic()
            return None
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already gone
                self._connection.close()
            self._connection = None
