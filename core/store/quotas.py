"""Quotas, checked when work is admitted: per key, experiments queued or running at once,
estimated CPU-hours per rolling day (core/cost.py) and cells per ablation; per account, the
bytes its runs may keep in the store.

The day's CPU-hours are summed from a ledger (`cpu_spend`, one row per admission), not from the
experiments: deleting a run does not hand its CPU-hours back, a ledger row only ages out a day
after it was written. Stored bytes are the priced figure (SpecCost.stored_bytes, the column
`experiments.stored_bytes`) of the runs the account still has: priced rather than measured, so
a queued run counts in full before it has written anything, and deleting a run frees its share
at once. Counting per account, not per key, keeps a second key from doubling the allowance.

Admission is atomic: `lock_key` must be the first statement of the submitting transaction. It
takes the key row's write lock (a no-op UPDATE), so concurrent submissions with one key queue
there (on PostgreSQL also an advisory lock on the account's name, so that two keys of one
account queue for its storage quota; SQLite's write lock already serializes everything). The
transaction then adds its experiments (flushed, not committed) and calls `check`,
which counts them with everything the key already has; over a quota it raises and the caller
rolls back. The counts can't change under it before the commit: 20 concurrent POSTs against a
quota of 5 admit exactly 5, on PostgreSQL (row lock) and on SQLite (database write lock) alike.
Checking after adding keeps one rule for every route: an idempotent replay or an ablation
that reuses runs adds nothing, and so costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlmodel import Session, col

from core.settings import Settings
from core.store.clock import as_utc, utcnow
from core.store.errors import StoreError
from core.store.models import ApiKey, CpuSpend, Status
from core.store.tables import EXPERIMENTS

SPEND: Table = CpuSpend.__table__  # type: ignore[attr-defined]

DAY = timedelta(days=1)
# When an active-run quota is full there is no telling when a run ends: ask to retry later.
ACTIVE_RETRY_AFTER_S = 60


@dataclass(frozen=True)
class Quotas:
    active_experiments: int
    daily_cpu_hours: float
    ablation_cells: int
    stored_bytes: int  # per account

    @classmethod
    def of(cls, settings: Settings) -> Quotas:
        """The quotas every key of this server has (TRAINLAB_QUOTA_*)."""
        return cls(
            active_experiments=settings.quota_active_experiments,
            daily_cpu_hours=settings.quota_daily_cpu_hours,
            ablation_cells=settings.quota_ablation_cells,
            stored_bytes=settings.quota_stored_bytes,
        )


class QuotaExceeded(StoreError):
    """A request over one of the key's quotas (the API answers 429 with Retry-After)."""

    def __init__(
        self,
        quota: str,
        limit: float,
        current: float,
        retry_after_s: int,
        *,
        holder: str = "this key",
        when: str | None = None,
    ) -> None:
        super().__init__(
            f"quota {quota} exceeded: the limit is {limit:g}, {holder} has {current:g} and "
            f"the request would add more; {when or f'retry in {retry_after_s} s'}"
        )
        self.quota, self.limit, self.current = quota, limit, current
        self.retry_after_s = retry_after_s


def lock_key(session: Session, key_id: str, account: str | None = None) -> None:
    session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(id=col(ApiKey.id)))
    if account is not None and session.get_bind().dialect.name == "postgresql":
        # Every admission takes the key's row lock first and this one second, so no two
        # transactions wait on each other in a cycle.
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:account, 0))"),
            {"account": f"trainlab.account:{account}"},
        )


def check_ablation_size(quotas: Quotas, cells: int) -> None:
    if cells > quotas.ablation_cells:
        raise QuotaExceeded("ablation_cells", quotas.ablation_cells, cells, 0)


def check(
    session: Session,
    key_id: str,
    quotas: Quotas,
    *,
    new_experiments: int,
    new_cost: float,
    account: str | None = None,
    new_stored_bytes: int = 0,
) -> None:
    """Raise QuotaExceeded if the key (or its `account`), counting the `new_experiments`
    (costing `new_cost` CPU-hours and `new_stored_bytes` in all) this transaction has just
    added, is over a quota; else write the request's CPU-hours into the key's ledger. Call
    after `lock_key` and after adding them, in the same transaction."""
    if new_experiments == 0:
        return
    c = EXPERIMENTS.c
    active = session.execute(
        select(func.count())
        .select_from(EXPERIMENTS)
        .where(c.key_id == key_id, c.status.in_([Status.queued.value, Status.running.value]))
    ).scalar_one()
    if active > quotas.active_experiments:
        before = active - new_experiments
        raise QuotaExceeded(
            "active_experiments", quotas.active_experiments, before, ACTIVE_RETRY_AFTER_S
        )
    if account is not None:
        _check_stored(session, account, quotas, new_stored_bytes)
    _spend(session, key_id, quotas, new_cost)


def stored_bytes(session: Session, account: str) -> int:
    """The priced bytes of every run the account still has (its storage quota's use)."""
    c = EXPERIMENTS.c
    total = session.execute(
        select(func.coalesce(func.sum(c.stored_bytes), 0)).where(c.owner == account)
    ).scalar_one()
    return int(total)


def _check_stored(session: Session, account: str, quotas: Quotas, new: int) -> None:
    total = stored_bytes(session, account)
    if total <= quotas.stored_bytes:
        return
    raise QuotaExceeded(
        "stored_bytes",
        quotas.stored_bytes,
        total - new,
        0,
        holder=f"account {account}",
        when="delete runs it no longer needs to free their share",
    )


def _spend(session: Session, key_id: str, quotas: Quotas, new_cost: float) -> None:
    """Check the key's rolling day of CPU-hours in its ledger, then add this request's."""
    now = utcnow()
    s = SPEND.c
    # Rows a day old count for nothing any more: dropped here, under the key's lock.
    session.execute(delete(SPEND).where(s.key_id == key_id, s.spent_at < now - DAY))
    rows = session.execute(
        select(s.spent_at, s.cpu_hours)
        .where(s.key_id == key_id, s.spent_at >= now - DAY)
        .order_by(s.spent_at)
    ).all()
    recent = [(row[0], float(row[1])) for row in rows]
    spent = sum(cost for _, cost in recent)  # before this request
    if spent + new_cost > quotas.daily_cpu_hours:
        retry = _cost_retry_after(recent, spent, new_cost, quotas)
        raise QuotaExceeded("daily_cpu_hours", quotas.daily_cpu_hours, float(f"{spent:.6g}"), retry)
    if new_cost > 0:
        session.execute(insert(SPEND).values(key_id=key_id, spent_at=now, cpu_hours=new_cost))


def _cost_retry_after(
    recent: Sequence[tuple[datetime, float]], spent: float, new_cost: float, quotas: Quotas
) -> int:
    """Seconds until enough of the day's spending has aged out for this request to fit (a
    request larger than the whole quota never fits: a day)."""
    if new_cost > quotas.daily_cpu_hours:
        return int(DAY.total_seconds())
    now = utcnow()
    # Oldest first: once every row has aged out, the request (no larger than the quota) fits.
    for created, cost in recent:
        spent -= cost
        if spent + new_cost <= quotas.daily_cpu_hours:
            stamp = as_utc(created)
            assert stamp is not None
            return max(1, math.ceil((stamp + DAY - now).total_seconds()))
    return int(DAY.total_seconds())
