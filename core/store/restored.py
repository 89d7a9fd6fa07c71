"""What a restored store does with the runs that were training when the backup was taken.

Their workers belong to the world the backup came from: nothing will beat for them again.
Each is put back to `queued` at once, as a hand-back (it lost nothing through its own fault,
so it does not count towards TRAINLAB_MAX_ATTEMPTS), with no broker message: the API's reaper
sends it, and the worker that claims it resumes from its last stored checkpoint (or from the
start, writing the same points again, when it had none yet). An operator may ask instead that
a run without a checkpoint be failed, with a message saying so. A run whose cancel had been
asked for ends `cancelled`, as the reaper ends a silent one. Nothing else changes: queued runs
keep their place (the reaper sends again what the broker does not hold), ended runs stay ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from core.store import runs
from core.store.models import Status
from core.store.tables import CHECKPOINTS, EXPERIMENTS

NO_CHECKPOINT = (
    "restored from a backup taken while it ran, before its first checkpoint: "
    "no checkpoint to resume from"
)
CANCELLED = "restored from a backup taken while it ran, after the cancel was asked for"

_C = EXPERIMENTS.c


@dataclass
class Reconciled:
    requeued: list[str] = field(default_factory=list)  # resume from their checkpoint
    restarted: list[str] = field(default_factory=list)  # requeued with no checkpoint
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def reconcile(session: Session, *, fail_without_checkpoint: bool = False) -> Reconciled:
    done = Reconciled()
    rows = session.execute(
        select(_C.id, _C.attempt, _C.cancel_requested, CHECKPOINTS.c.step)
        .outerjoin(CHECKPOINTS, CHECKPOINTS.c.experiment_id == _C.id)
        .where(_C.status == Status.running.value)
        .order_by(_C.created_at)
    ).all()
    for experiment_id, attempt, cancel_requested, checkpoint_step in rows:
        if cancel_requested:
            if runs.finish(
                session, experiment_id, attempt, status=Status.cancelled, error=CANCELLED
            ):
                done.cancelled.append(experiment_id)
        elif checkpoint_step is None and fail_without_checkpoint:
            if runs.fail(session, experiment_id, NO_CHECKPOINT):
                done.failed.append(experiment_id)
        elif runs.requeue(session, experiment_id, expected_attempt=attempt, handed_back=True):
            (done.requeued if checkpoint_step is not None else done.restarted).append(experiment_id)
    return done
