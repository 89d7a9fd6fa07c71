"""A sweep driver's lease (core/store/sweeps.py: one driver at a time across API processes),
as the driver's pass uses it: sessions, the take, and commits fenced by the lease.

The lease fences every commit, not only the start of a pass: the pass takes it (and commits
that at once, holding nothing while it reads and asks), and each of its transactions commits
only if this process is still the lease's owner (keep_lease, checked with the sweep's row held
to the commit). A process paused past its lease while another took the sweep over commits
nothing more: its next commit finds the other owner and rolls back, and a trial it asks that
the other has already asked is that same sign. A process paused in the middle of a
transaction does not hold the sweep's row from the one taking over either: the server ends a
transaction left idle for a lease's length (bounded_idle_session).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.store import sweeps as sweep_store
from core.store.session import bounded_idle_session


class LeaseLost(Exception):
    """Another process drives the sweep now: this pass stops where it is."""


def driver_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class SweepLease:
    def __init__(self, engine: Engine, lease_s: float) -> None:
        self.engine, self.lease_s = engine, lease_s
        self.me = driver_name()

    def session(self) -> Session:
        return bounded_idle_session(self.engine, self.lease_s)

    def take(self, session: Session, sweep_id: str) -> bool:
        """Take (or renew) the lease and commit that at once; False when another holds it."""
        if not sweep_store.take_lease(session, sweep_id, self.me, self.lease_s):
            session.rollback()
            return False
        session.commit()
        return True

    def commit(self, session: Session, sweep_id: str) -> None:
        """Commit this transaction's writes if this process still holds the lease; else roll
        them back and raise LeaseLost."""
        with self.collisions(session, sweep_id):
            session.flush()
        if not sweep_store.keep_lease(session, sweep_id, self.me, self.lease_s):
            session.rollback()
            raise LeaseLost(sweep_id)
        session.commit()

    @contextlib.contextmanager
    def collisions(self, session: Session, sweep_id: str) -> Iterator[None]:
        """A write that collides with another's (the trial number it asks already stored) is
        LeaseLost when another process holds the lease now: that one asked it."""
        try:
            yield
        except IntegrityError:
            session.rollback()
            if sweep_store.lease_owner(session, sweep_id) != self.me:
                raise LeaseLost(sweep_id) from None
            raise
