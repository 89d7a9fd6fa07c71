"""Admitting new work for a caller: who owns it, and whether the key's quotas allow it.

Used the same way by every route that creates experiments (core/store/quotas.py says why the
order matters): `open_admission` first in the transaction, then the route adds its experiments
with `owner_fields`, then `settle` with the experiments it created; over a quota it raises
QuotaExceeded and the route's session rolls back, so nothing is stored. On an open server (no
key) there is no owner and no quota.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session

from core.identity import Principal
from core.store import quotas
from core.store.models import Experiment


@contextmanager
def transaction(session: Session) -> Iterator[None]:
    """Commit what the block admitted, or roll it back at once when it raises (over a quota):
    a write transaction left open until the request's end would keep others waiting."""
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    session.commit()


def open_admission(session: Session, principal: Principal) -> None:
    if principal.key_id is not None:
        quotas.lock_key(session, principal.key_id, principal.name)


def owner_fields(
    principal: Principal, cpu_hours: float, stored_bytes: int | None = None
) -> dict[str, Any]:
    """What create_experiment records about who submitted a run, and its estimated cost (the
    CPU-hours and stored bytes its submission was priced at: core/cost.py, once per spec;
    without `stored_bytes`, create_experiment prices them)."""
    fields: dict[str, Any] = {"owner": principal.name, "key_id": principal.key_id}
    fields["cost"] = cpu_hours
    if stored_bytes is not None:
        fields["stored_bytes"] = stored_bytes
    return fields


def settle(
    session: Session, principal: Principal, limits: quotas.Quotas, created: Sequence[Experiment]
) -> None:
    """Check the quotas with the experiments this transaction `created` counted: their
    CPU-hours against the key's day, their priced bytes against the account's storage."""
    if principal.key_id is None or not created:
        return
    quotas.check(
        session,
        principal.key_id,
        limits,
        new_experiments=len(created),
        new_cost=sum(e.cost for e in created),
        account=principal.name,
        new_stored_bytes=sum(e.stored_bytes for e in created),
    )
