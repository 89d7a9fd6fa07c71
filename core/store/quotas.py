"""Per-key quotas, checked when work is admitted: experiments queued or running at once,
estimated CPU-hours per rolling day (core/cost.py), and cells per ablation.

Admission is atomic: `lock_key` must be the first statement of the submitting transaction. It
takes the key row's write lock (a no-op UPDATE), so concurrent submissions with one key queue
there. The transaction then adds its experiments (flushed, not committed) and calls `check`,
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

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from core.store.clock import as_utc, utcnow
from core.store.errors import StoreError
from core.store.models import ApiKey, Status
from core.store.tables import EXPERIMENTS

DAY = timedelta(days=1)
# When an active-run quota is full there is no telling when a run ends: ask to retry later.
ACTIVE_RETRY_AFTER_S = 60


@dataclass(frozen=True)
class Quotas:
    active_experiments: int
    daily_cpu_hours: float
    ablation_cells: int


class QuotaExceeded(StoreError):
    """A request over one of the key's quotas (the API answers 429 with Retry-After)."""

    def __init__(self, quota: str, limit: float, current: float, retry_after_s: int) -> None:
        super().__init__(
            f"quota {quota} exceeded: the limit is {limit:g}, this key has {current:g} and "
            f"the request would add more; retry in {retry_after_s} s"
        )
        self.quota, self.limit, self.current = quota, limit, current
        self.retry_after_s = retry_after_s


def lock_key(session: Session, key_id: str) -> None:
    session.execute(update(ApiKey).where(col(ApiKey.id) == key_id).values(id=col(ApiKey.id)))


def check_ablation_size(quotas: Quotas, cells: int) -> None:
    if cells > quotas.ablation_cells:
        raise QuotaExceeded("ablation_cells", quotas.ablation_cells, cells, 0)


def check(
    session: Session, key_id: str, quotas: Quotas, *, new_experiments: int, new_cost: float
) -> None:
    """Raise QuotaExceeded if the key, counting the `new_experiments` (costing `new_cost` in
    all) this transaction has just added, is over a quota. Call after `lock_key` and after
    adding them, in the same transaction."""
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
    now = utcnow()
    rows = session.execute(
        select(c.created_at, c.cost)
        .where(c.key_id == key_id, c.created_at >= now - DAY)
        .order_by(c.created_at)
    ).all()
    recent = [(row[0], float(row[1])) for row in rows]
    spent = sum(cost for _, cost in recent) - new_cost  # before this request
    if spent + new_cost <= quotas.daily_cpu_hours:
        return
    retry = _cost_retry_after(recent, spent, new_cost, quotas)
    raise QuotaExceeded("daily_cpu_hours", quotas.daily_cpu_hours, float(f"{spent:.6g}"), retry)


def _cost_retry_after(
    recent: Sequence[tuple[datetime, float]], spent: float, new_cost: float, quotas: Quotas
) -> int:
    """Seconds until enough of the day's spending has aged out for this request to fit (a
    request larger than the whole quota never fits: a day)."""
    if new_cost > quotas.daily_cpu_hours:
        return int(DAY.total_seconds())
    now = utcnow()
    # Oldest first; this request's own rows come last and are never reached: once every older
    # row has aged out, the request (no larger than the quota) fits.
    for created, cost in recent:
        spent -= cost
        if spent + new_cost <= quotas.daily_cpu_hours:
            stamp = as_utc(created)
            assert stamp is not None
            return max(1, math.ceil((stamp + DAY - now).total_seconds()))
    return int(DAY.total_seconds())
