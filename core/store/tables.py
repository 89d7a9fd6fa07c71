"""Core table handles for the store's set-based statements (conditional UPDATEs, bulk
inserts), which bypass the ORM unit of work on purpose: each is one statement, one round trip."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, and_, update
from sqlmodel import Session, SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.store.models import Status


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


EXPERIMENTS = _table("experiments")
LOSS = _table("loss_points")
# Named series other than the classifier's (core/store/series.py says which table holds which).
NAMED = _table("series_points")
SERIES = _table("experiment_series")
PREDICTIONS = _table("experiment_predictions")
CHECKPOINTS = _table("experiment_checkpoints")


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE/DELETE or written by an INSERT (never negative)."""
    return max(int(cast(CursorResult[Any], result).rowcount), 0)


def lock_if_owner(session: Session, experiment_id: str, attempt: int) -> bool:
    """True when `attempt` is the experiment's current running attempt; the row then stays
    write-locked until the session commits, so the attempt can't be superseded meanwhile."""
    owned = and_(
        EXPERIMENTS.c.id == experiment_id,
        EXPERIMENTS.c.attempt == attempt,
        EXPERIMENTS.c.status == Status.running.value,
    )
    matched = session.execute(
        update(EXPERIMENTS).where(owned).values(attempt=EXPERIMENTS.c.attempt)
    )
    return rowcount(matched) == 1
