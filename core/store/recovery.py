"""What the reaper asks the store when it tidies the broker (api/background/reaper.py)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlmodel import Session

from core.store.models import Status
from core.store.tables import EXPERIMENTS

_C = EXPERIMENTS.c
_BATCH = 1000


def running_among(session: Session, experiment_ids: Collection[str]) -> set[str]:
    """Which of these experiments are `running`: a stale unacknowledged message of one of
    them may still belong to the live worker training it, and is left alone."""
    ids = list(experiment_ids)
    running: set[str] = set()
    for start in range(0, len(ids), _BATCH):
        rows = session.execute(
            select(_C.id).where(
                _C.id.in_(ids[start : start + _BATCH]), _C.status == Status.running.value
            )
        ).scalars()
        running.update(str(row) for row in rows)
    return running
