"""bounded_idle_session: a transaction its process leaves idle (paused, frozen) past the
bound gives its row locks back, so whoever waits on them goes on; the paused process's
transaction is rolled back and it learns so at its next statement."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import DBAPIError

from core.store.models import Experiment
from core.store.session import bounded_idle_session, session_scope
from tests.core.store.helpers import queued

BOUND_S = 0.5


# SQLite has no server to end a transaction: its one writer holds the file.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_transaction_left_idle_past_its_bound_lets_its_row_locks_go(engine: Engine) -> None:
    experiment_id = queued(engine)
    paused = bounded_idle_session(engine, BOUND_S)
    paused.execute(update(Experiment).where(Experiment.id == experiment_id).values(step=1))
    time.sleep(BOUND_S * 3)  # the process "pauses" holding the row's lock
    with session_scope(engine) as other:
        other.connection().exec_driver_sql("SET LOCAL lock_timeout = '5s'")
        stmt = update(Experiment).where(Experiment.id == experiment_id).values(step=2)
        assert other.execute(stmt).rowcount == 1  # not held off until the lock timeout
    with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
        paused.commit()
    paused.close()
    with session_scope(engine) as session:
        assert session.get(Experiment, experiment_id).step == 2  # type: ignore[union-attr]


def test_a_busy_transaction_within_its_bound_commits(engine: Engine) -> None:
    experiment_id = queued(engine)
    with bounded_idle_session(engine, BOUND_S * 4) as session:
        for step in range(1, 4):
            stmt = update(Experiment).where(Experiment.id == experiment_id).values(step=step)
            session.execute(stmt)
            time.sleep(BOUND_S)
        session.commit()
    with session_scope(engine) as session:
        assert session.get(Experiment, experiment_id).step == 3  # type: ignore[union-attr]
