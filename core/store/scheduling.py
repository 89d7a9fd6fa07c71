"""Which queued experiment a worker runs next: fair between accounts.

A run message is a token for "run one queued experiment", not an order to run that one: the
worker that takes a message claims the experiment `next_fair` picks, and the message's own
experiment is picked by a later message. Every queued experiment has a message of its own, so
the tokens always cover the queue; a message that finds nothing left to claim is dropped.

The pick: among accounts with queued work, the one with the fewest runs going now, then the one
served longest ago (its latest start), then the oldest queued experiment of that account. Two
members who each submit 50 runs are served alternately, whoever submitted first; an account
that queues 200 runs cannot hold every worker while another waits. Experiments from an open
server (no owner) count as one account.
"""

from __future__ import annotations

from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from core.store.models import Status
from core.store.runs import claim
from core.store.tables import EXPERIMENTS

_C = EXPERIMENTS.c
_queued = and_(_C.status == Status.queued.value, _C.cancel_requested.is_(False))
# Claims race with other workers: a pick another worker took first is passed over.
_ATTEMPTS = 5


def fair_candidates(session: Session, limit: int) -> list[str]:
    """Queued experiments in the order the fairness rule would run them, best first.

    Every claim asks this, so it must not grow with the store's history: the statistics are
    read only for the accounts that have queued work, each by index (the running count by
    status, the latest start by ix_experiments_owner_started: migration 0014), rather than
    grouped over every experiment ever run (a scan of the whole table per claim)."""
    waiting = select(_C.owner).where(_queued).distinct()
    owners = list(session.execute(waiting).scalars())
    if not owners:
        return []
    # One statement for every waiting account's two figures, each a subquery an index answers.
    figures = []
    for owner in owners:
        mine = _C.owner.is_(None) if owner is None else _C.owner == owner
        figures += [
            select(func.count()).where(_C.status == Status.running.value, mine).scalar_subquery(),
            select(func.max(_C.started_at)).where(mine).scalar_subquery(),
        ]
    row = session.execute(select(*figures)).one()
    # Fewest running first, then served longest ago (never served: first of all).
    rank = {
        owner: (int(row[2 * i]), row[2 * i + 1] is not None, row[2 * i + 1] or 0)
        for i, owner in enumerate(owners)
    }
    order = sorted(owners, key=lambda owner: rank[owner])
    # Experiments from an open server (no owner) count as one account; an owner is never ''.
    who = func.coalesce(_C.owner, "")
    place = case({owner or "": i for i, owner in enumerate(order)}, value=who)
    query = select(_C.id).where(_queued).order_by(place, _C.created_at, _C.id).limit(limit)
    return [str(row) for row in session.execute(query).scalars()]


def claim_next(
    session: Session, hint: str, *, worker: str, stale_after_s: float
) -> tuple[str, int] | None:
    """Claim what to run for a message naming `hint`: the hint itself when it is a running
    experiment whose worker went silent (its run resumes), else the fairest queued one, even
    when the hint runs elsewhere (every message must stand for some queued run, or one could be
    left without). Returns (experiment id, attempt), or None when there is nothing to run."""
    status = session.execute(select(_C.status).where(_C.id == hint)).scalar_one_or_none()
    if status == Status.running.value:
        attempt = claim(session, hint, worker=worker, stale_after_s=stale_after_s)
        if attempt is not None:
            return hint, attempt
    for _ in range(_ATTEMPTS):
        candidates = fair_candidates(session, limit=1)
        if not candidates:
            return None
        attempt = claim(session, candidates[0], worker=worker, stale_after_s=stale_after_s)
        if attempt is not None:
            return candidates[0], attempt
    return None


# Candidates read beyond `most`: members another worker claims first are passed over.
_RACE_SLACK = 16


def claim_siblings(
    session: Session, head: str, *, worker: str, stale_after_s: float, most: int
) -> list[tuple[str, int]]:
    """Claim up to `most` queued experiments that can train fused with `head` (same account,
    same structure: core.spec.group_key), oldest first, in this one transaction: the
    members of a group are taken together, and each by the same conditional UPDATE as any
    claim, so none is taken twice. Returns (experiment id, attempt) of each member taken."""
    if most <= 0:
        return []
    row = session.execute(select(_C.owner, _C.group_key).where(_C.id == head)).first()
    if row is None or row.group_key is None:
        return []  # a spec that no longer validates stored no key: it trains alone
    same_owner = _C.owner.is_(None) if row.owner is None else _C.owner == row.owner
    # The key was computed when the spec was validated at submit (or by migration 0006), so
    # the structure is compared in SQL, without validating any candidate's spec again.
    candidates = session.execute(
        select(_C.id)
        .where(_C.status == Status.queued.value, _C.cancel_requested.is_(False), same_owner)
        .where(_C.group_key == row.group_key, _C.id != head)
        .order_by(_C.created_at, _C.id)
        .limit(most + _RACE_SLACK)
    ).scalars()
    taken: list[tuple[str, int]] = []
    for candidate_id in candidates:
        if len(taken) >= most:
            break
        attempt = claim(session, candidate_id, worker=worker, stale_after_s=stale_after_s)
        if attempt is not None:
            taken.append((str(candidate_id), attempt))
    return taken
