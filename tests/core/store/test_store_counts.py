"""The counts PostgreSQL's triggers keep (migration 0017, core/store/store_counts.py) answer
what a full count of the experiments would, through every write that moves them; the change
count of the ended experiments only grows, even when an end and a deletion leave the number
of ended runs as it was; and folding the rows keeps the sums, also with a write in flight."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from core.store import census, retention, runs, store_counts
from core.store.models import TERMINAL_VALUES, Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.core.store.helpers import finish, queued, running

_C = store_counts.STORE_COUNTS.c


# SQLite counts its rows itself: no counts are kept there.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def pg(engine: Engine) -> Engine:
    assert engine.dialect.name == "postgresql"
    return engine


def kept(engine: Engine) -> tuple[int, int, int, int]:
    """(experiments, ended, changes to the ended ones, rows) as the kept counts say."""
    with Session(engine) as session:
        summed = select(
            func.sum(_C.experiments), func.sum(_C.ended), func.sum(_C.ended_changes), func.count()
        )
        row: Any = session.execute(summed).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3])


def counted(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        every = session.execute(select(func.count()).select_from(EXPERIMENTS)).scalar_one()
        ended = session.execute(
            select(func.count()).where(EXPERIMENTS.c.status.in_(TERMINAL_VALUES))
        ).scalar_one()
    return int(every), int(ended)


def test_the_kept_counts_follow_every_write(pg: Engine) -> None:
    base = kept(pg)
    assert base[:2] == counted(pg)
    queued(pg)
    going_id, going_attempt = running(pg)
    assert kept(pg)[:3] == (*counted(pg), base[2])  # created, claimed: no ended change
    with session_scope(pg) as session:
        assert runs.requeue(session, going_id, expected_attempt=going_attempt)
        attempt = runs.claim(session, going_id, worker="w", stale_after_s=3600)
    assert attempt is not None and finish(pg, going_id, attempt, Status.failed)
    after_end = kept(pg)
    assert after_end[:2] == counted(pg) and after_end[2] == base[2] + 1
    # An end and a deletion together leave the number ended as it was; the changes move on.
    last_id, last_attempt = running(pg)
    with session_scope(pg) as session:
        retention.delete_experiment(session, going_id, cancel=False)
    assert finish(pg, last_id, last_attempt, Status.succeeded)
    after_both = kept(pg)
    assert after_both[:2] == counted(pg) and after_both[1] == after_end[1]
    assert after_both[2] == after_end[2] + 2
    with Session(pg) as session:
        marks = census.activity_marks(session)
    assert (marks.experiment_count, marks.ended) == counted(pg)


def test_folding_keeps_the_sums_and_a_write_in_flight(pg: Engine) -> None:
    for _ in range(3):
        queued(pg)
    experiment_id, _ = running(pg)
    before = kept(pg)
    assert before[3] > 1
    # A run ends in a transaction still open while the rows are folded elsewhere.
    with pg.connect() as writer:
        writer.execute(
            EXPERIMENTS.update()
            .where(EXPERIMENTS.c.id == experiment_id)
            .values(status=Status.cancelled.value)
        )
        with pg.begin() as folding:
            store_counts.fold(folding)
        assert kept(pg)[:3] == before[:3] and kept(pg)[3] == 1
        writer.commit()
    after = kept(pg)
    assert after[:2] == counted(pg) and after[2] == before[2] + 1 and after[3] == 2


def test_a_read_folds_the_rows_past_the_bound(pg: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(4):
        queued(pg)
    monkeypatch.setattr(store_counts, "FOLD_ROWS", 2)
    sums = kept(pg)[:3]
    assert kept(pg)[3] > 2
    census.forget_ended_totals()
    with Session(pg) as session:
        totals = census.status_totals(session)
    assert kept(pg) == (*sums, 1) and totals["queued"].experiments == 4
    for _ in range(3):
        queued(pg)
    with Session(pg) as session:
        marks = census.activity_marks(session)
    assert kept(pg)[3] == 1 and marks.experiment_count == 7 == counted(pg)[0]
