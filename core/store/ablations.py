"""Ablations and their members in the store. Experiments themselves are created and read
through core/store/experiments.py; this module only adds the ablation tables and the reuse
lookup. Functions take a Session and commit nothing (the caller's session commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core import kinds
from core.kinds import AnySpec
from core.store.clock import utcnow
from core.store.cursor import decode_cursor, encode_cursor
from core.store.errors import AblationNotFound, IdempotencyConflict
from core.store.experiments import scoped_key
from core.store.models import Ablation, AblationMember, Experiment, Status
from core.store.tables import EXPERIMENTS

# A failed or cancelled run is not an answer: an ablation asking for the same spec reruns it.
REUSABLE = (Status.queued.value, Status.running.value, Status.succeeded.value)
_MEMBERS = AblationMember.__table__  # type: ignore[attr-defined]


def find_reusable(session: Session, spec: AnySpec, owner: str | None) -> Experiment | None:
    """An experiment of `owner`'s with exactly this spec (seed included) that did or will
    succeed. The 16-hex-digit hash narrows the search; the canonical JSON decides, so a hash
    collision can never hand back a different experiment. Succeeded runs win over pending ones.

    Only the same owner's runs (no owner: only runs without one, as on an open server): an
    ablation that counted another account's run would keep that account from deleting it
    (an ablation member is not deleted alone), so nobody's runs are held by someone else."""
    wanted = spec.canonical_json()
    same_owner = (
        col(Experiment.owner).is_(None) if owner is None else col(Experiment.owner) == owner
    )
    rows = session.exec(
        select(Experiment)
        .where(col(Experiment.spec_hash) == spec.fingerprint())
        .where(same_owner)
        .where(col(Experiment.status).in_(REUSABLE))
        # A run asked to stop (or to be deleted once stopped) will not answer anything.
        .where(col(Experiment.cancel_requested).is_(False))
        .order_by(col(Experiment.created_at))
    ).all()
    rank = {Status.succeeded.value: 0, Status.running.value: 1, Status.queued.value: 2}
    for experiment in sorted(rows, key=lambda e: rank.get(e.status, 3)):
        try:
            stored = kinds.parse(experiment.spec)
        except ValueError:  # a stored spec from an older schema: not comparable, not reused
            continue
        if isinstance(stored, AnySpec) and stored.canonical_json() == wanted:
            return experiment
    return None


def add_ablation(
    session: Session,
    *,
    name: str | None,
    design: str,
    request: dict[str, Any],
    arms: list[dict[str, Any]],
    seeds: list[int],
    members: Sequence[tuple[int, int, str]],
    owner: str | None = None,
    idempotency_key: str | None = None,
) -> Ablation:
    """Store an ablation and its (arm, seed, experiment_id) cells. A key already stored (a
    racing retry committed first) fails the flush with an IntegrityError."""
    ablation = Ablation(
        name=name,
        design=design,
        request=request,
        arms=arms,
        seeds=seeds,
        created_at=utcnow(),
        owner=owner,
        idempotency_key=scoped_key(idempotency_key, owner),
    )
    session.add(ablation)
    session.flush()
    for arm, seed, experiment_id in members:
        session.add(
            AblationMember(ablation_id=ablation.id, arm=arm, seed=seed, experiment_id=experiment_id)
        )
    session.flush()
    return ablation


def get_ablation(session: Session, ablation_id: str) -> Ablation | None:
    return session.get(Ablation, ablation_id)


def ablation_by_idempotency_key(
    session: Session, key: str, owner: str | None, request: dict[str, Any]
) -> Ablation | None:
    """The ablation an earlier POST with this Idempotency-Key (of this owner) made, or None;
    IdempotencyConflict when that POST asked for something else."""
    stored = scoped_key(key, owner)
    found = session.exec(select(Ablation).where(col(Ablation.idempotency_key) == stored)).first()
    if found is not None and found.request != request:
        raise IdempotencyConflict(key, found.id, "ablation")
    return found


def require_ablation(session: Session, ablation_id: str) -> Ablation:
    ablation = get_ablation(session, ablation_id)
    if ablation is None:
        raise AblationNotFound(ablation_id)
    return ablation


def list_ablations(
    session: Session, *, limit: int = 20, cursor: str | None = None
) -> tuple[list[Ablation], str | None]:
    """Newest first, keyset paging on (created_at, id) as for experiments."""
    query = select(Ablation)
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Ablation.created_at) < created,
                and_(col(Ablation.created_at) == created, col(Ablation.id) < last_id),
            )
        )
    query = query.order_by(col(Ablation.created_at).desc(), col(Ablation.id).desc())
    rows = list(session.exec(query.limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1].created_at, page[-1].id)


def members_with_experiments(
    session: Session, ablation_ids: Sequence[str]
) -> dict[str, list[tuple[AblationMember, Experiment]]]:
    """Every member of the given ablations with its experiment, in (arm, seed) order: one
    query for a whole page of ablations."""
    found: dict[str, list[tuple[AblationMember, Experiment]]] = {a: [] for a in ablation_ids}
    if not ablation_ids:
        return found
    rows = session.exec(
        select(AblationMember, Experiment)
        .join(Experiment, col(Experiment.id) == col(AblationMember.experiment_id))
        .where(col(AblationMember.ablation_id).in_(list(ablation_ids)))
        .order_by(col(AblationMember.arm), col(AblationMember.seed))
    ).all()
    for member, experiment in rows:
        found[member.ablation_id].append((member, experiment))
    return found


def shared_elsewhere(session: Session, ablation_id: str, experiment_ids: set[str]) -> set[str]:
    """Those of `experiment_ids` that another ablation also counts among its members."""
    if not experiment_ids:
        return set()
    rows = session.exec(
        select(AblationMember.experiment_id)
        .where(col(AblationMember.experiment_id).in_(sorted(experiment_ids)))
        .where(col(AblationMember.ablation_id) != ablation_id)
    ).all()
    return set(rows)


@dataclass(frozen=True)
class MemberState:
    """One member's run as the summary needs it first: where it sits, how it stands, when it
    ended. Narrow on purpose (no spec, no metrics JSON): it is read on every summary request,
    and while every member has ended it is all a cached summary is checked against."""

    arm: int
    seed: int
    experiment_id: str
    status: str
    finished_at: datetime | None


def member_states(session: Session, ablation_id: str) -> list[MemberState]:
    """The ablation's members in (arm, seed) order, with their runs' status and end time."""
    rows = session.execute(
        sa_select(
            _MEMBERS.c.arm,
            _MEMBERS.c.seed,
            _MEMBERS.c.experiment_id,
            EXPERIMENTS.c.status,
            EXPERIMENTS.c.finished_at,
        )
        .join(EXPERIMENTS, EXPERIMENTS.c.id == _MEMBERS.c.experiment_id)
        .where(_MEMBERS.c.ablation_id == ablation_id)
        .order_by(_MEMBERS.c.arm, _MEMBERS.c.seed)
    ).all()
    return [MemberState(int(a), int(s), str(e), str(st), f) for a, s, e, st, f in rows]
