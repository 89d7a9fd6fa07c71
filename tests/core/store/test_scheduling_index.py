"""A claim's fairness rule reads only the accounts with queued work, each by index (migration
0014): on PostgreSQL no statement of it reads the whole experiments table, and an account's
latest start comes from ix_experiments_owner_started. Before, it grouped every experiment
ever run by account (a sequential scan per claim), and without the index the latest start
reads every experiment of the account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from core.store.scheduling import fair_candidates
from tests.core.store.planner import filled_postgres, plans


@pytest.fixture(scope="module")
def filled() -> Iterator[Engine]:
    with filled_postgres() as engine:
        with engine.begin() as connection:
            # 20 accounts over the 4,000 runs; 30 queued runs of 3 of them.
            connection.execute(text("UPDATE experiments SET owner = 'acct' || (step % 20)"))
            connection.execute(
                text(
                    "UPDATE experiments SET status = 'queued', started_at = NULL,"
                    " finished_at = NULL WHERE step % 130 = 0"
                )
            )
            connection.execute(text("ANALYZE experiments"))
        yield engine


def test_fair_candidates_read_by_index(filled: Engine) -> None:
    found = plans(filled, lambda session: fair_candidates(session, limit=1))
    assert len(found) == 3, found  # the waiting accounts, their figures, the pick
    for plan in found:
        assert '"Seq Scan"' not in plan, plan
    assert '"ix_experiments_owner_started"' in found[1], found[1]


def test_fair_candidates_pick_a_queued_run(filled: Engine) -> None:
    from sqlmodel import Session

    with Session(filled) as session:
        picked = fair_candidates(session, limit=5)
        statuses = session.execute(
            text("SELECT DISTINCT status FROM experiments WHERE id = ANY(:ids)"),
            {"ids": picked},
        ).scalars()
        assert len(picked) == 5
        assert set(statuses) == {"queued"}
