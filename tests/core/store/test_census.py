"""The census reads answer what a full count of the store would, at every step of a run's
life (created, claimed, requeued, ended, deleted), while /metrics re-reads the ended
experiments only when one has ended or been deleted since. On SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlmodel import Session

from core.store import census, retention, runs
from core.store.models import Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.core.store.helpers import finish, queued, running


def _counted(engine: Engine) -> dict[str, census.StatusTotal]:
    """Every experiment read and counted by status: what status_totals must answer."""
    found = {s.value: census.StatusTotal(0, 0) for s in Status}
    with Session(engine) as session:
        c = EXPERIMENTS.c
        query = select(c.status, func.count(), func.sum(c.attempt)).group_by(c.status)
        for status, count, attempts in session.execute(query):
            found[status] = census.StatusTotal(int(count), int(attempts or 0))
    return found


def _read(engine: Engine) -> tuple[dict[str, census.StatusTotal], int]:
    """status_totals, and how many times it summed the ended experiments."""
    summed = []

    def seen(_conn: Any, clause: Any, *_: Any) -> None:
        if clause is census._ENDED_TOTALS:
            summed.append(clause)

    event.listen(engine, "before_execute", seen)
    try:
        with Session(engine) as session:
            return census.status_totals(session), len(summed)
    finally:
        event.remove(engine, "before_execute", seen)


def test_totals_match_a_full_count_and_ended_rows_are_reread_only_after_a_change(
    engine: Engine,
) -> None:
    census.forget_ended_totals()
    done_id, done_attempt = running(engine)
    assert finish(engine, done_id, done_attempt, Status.succeeded)
    totals, summed = _read(engine)
    assert totals == _counted(engine) and summed == 1
    assert _read(engine) == (totals, 0)  # nothing ended or deleted: kept
    queued(engine)
    going_id, going_attempt = running(engine)
    totals, summed = _read(engine)
    assert totals == _counted(engine) and summed == 0  # new runs are open ones, read fresh
    with session_scope(engine) as session:
        assert runs.requeue(session, going_id, expected_attempt=going_attempt)
    assert _read(engine) == (_counted(engine), 0)
    with session_scope(engine) as session:
        attempt = runs.claim(session, going_id, worker="w", stale_after_s=3600)
    assert attempt is not None and finish(engine, going_id, attempt, Status.failed)
    totals, summed = _read(engine)
    assert totals == _counted(engine) and totals["failed"].experiments == 1 and summed == 1
    # A deletion and an end together leave the count of ended runs as it was.
    last_id, last_attempt = running(engine)
    with session_scope(engine) as session:
        retention.delete_experiment(session, done_id, cancel=False)
    assert finish(engine, last_id, last_attempt, Status.cancelled)
    totals, summed = _read(engine)
    assert totals == _counted(engine) and totals["succeeded"].experiments == 0 and summed == 1


def test_activity_marks_count_what_has_ended(engine: Engine) -> None:
    queued(engine)
    experiment_id, attempt = running(engine)
    with Session(engine) as session:
        before = census.activity_marks(session)
    assert (before.experiment_count, before.ended) == (2, 0)
    assert finish(engine, experiment_id, attempt, Status.succeeded)
    with Session(engine) as session:
        after = census.activity_marks(session)
    assert (after.experiment_count, after.ended) == (2, 1) and after != before
