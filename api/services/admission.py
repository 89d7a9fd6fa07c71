"""Admitting new work for a caller: who owns it, and whether the key's quotas allow it.

Used the same way by every route that creates experiments (core/store/quotas.py says why the
order matters): `open_admission` first in the transaction, then the route adds its experiments
with `owner_fields`, then `settle` with their costs; over a quota it raises QuotaExceeded and
the route's session rolls back, so nothing is stored. On an open server (no key) there is no
owner and no quota.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session

from api.auth import Principal
from core.cost import estimate
from core.kinds import AnySpec
from core.store import quotas


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
        quotas.lock_key(session, principal.key_id)


def owner_fields(principal: Principal, spec: AnySpec) -> dict[str, Any]:
    """What create_experiment records about who submitted `spec`, and its estimated cost."""
    return {
        "owner": principal.name,
        "key_id": principal.key_id,
        "cost": estimate(spec).cpu_hours,
    }


def settle(
    session: Session, principal: Principal, limits: quotas.Quotas, new_costs: Sequence[float]
) -> None:
    if principal.key_id is None or not new_costs:
        return
    quotas.check(
        session,
        principal.key_id,
        limits,
        new_experiments=len(new_costs),
        new_cost=sum(new_costs),
    )
