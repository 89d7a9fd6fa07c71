"""Handing experiments to the broker, and remembering that it happened.

An experiment is committed to the store before its message is sent, so a broker that is down
at submit time loses nothing: `dispatched_at` stays NULL and the reaper sends it later.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.db.models import Experiment, Status, utcnow
from api.db.session import session_scope
from api.queue import enqueue_run

logger = logging.getLogger(__name__)


def dispatch(experiment_id: str) -> bool:
    """Send the run message and record it; False (logged) when the broker refused it."""
    try:
        enqueue_run(experiment_id)
    except Exception:  # broker down: the experiment stays queued and undispatched
        logger.warning("could not send experiment %s to the broker; will retry", experiment_id)
        return False
    with session_scope() as session:
        session.execute(
            update(Experiment)
            .where(col(Experiment.id) == experiment_id)
            .values(dispatched_at=utcnow())
        )
    return True


def undispatched(session: Session, *, older_than_s: float) -> list[str]:
    """Queued experiments whose message never reached the broker (oldest first)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    rows = session.exec(
        select(Experiment.id)
        .where(col(Experiment.status) == Status.queued)
        .where(col(Experiment.dispatched_at).is_(None))
        .where(col(Experiment.created_at) < cutoff)
        .order_by(col(Experiment.created_at))
        .limit(500)
    )
    return list(rows)


def forget_dispatch(session: Session, experiment_id: str) -> None:
    """Mark a requeued experiment as needing a new message."""
    session.execute(
        update(Experiment).where(col(Experiment.id) == experiment_id).values(dispatched_at=None)
    )
