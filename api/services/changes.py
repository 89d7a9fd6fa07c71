"""A fingerprint of everything the dashboard's lists show, read once per interval per
process however many clients watch it (GET /changes streams it).

One aggregate read over the experiments (how many; the newest creation, start, heartbeat and
end; the sums of steps and attempts; how many have ended, run, were asked to cancel or to be
deleted) and one over the ablations (how many, the newest). Creating, claiming, training
(every heartbeat moves a step or a time), requeueing, cancelling, finishing and deleting
each move one of them; the fingerprint is their digest. `ended`, the number of finished
experiments, is passed on so that a client can refresh heavier views only when a run ends.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import ColumnElement, Engine, case, func, select
from sqlmodel import col
from starlette.concurrency import run_in_threadpool

from core.store.models import TERMINAL_VALUES, Ablation, Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS

# How often the store is read for changes (and so the most often a client hears of them).
CHANGES_POLL_S = 2.0


@dataclass(frozen=True)
class ChangeMark:
    version: str
    experiments: int
    ended: int
    ablations: int


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def read_mark(engine: Engine) -> ChangeMark:
    c = EXPERIMENTS.c
    terminal = list(TERMINAL_VALUES)
    experiments = select(
        func.count(),
        func.max(c.created_at),
        func.max(c.started_at),
        func.max(c.heartbeat_at),
        func.max(c.finished_at),
        func.coalesce(func.sum(c.step), 0),
        func.coalesce(func.sum(c.attempt), 0),
        _count_where(c.status.in_(terminal)),
        _count_where(c.status == Status.running.value),
        _count_where(c.cancel_requested),
        _count_where(c.delete_requested),
    ).select_from(EXPERIMENTS)
    ablations = select(func.count(), func.max(col(Ablation.created_at)))
    with session_scope(engine) as session:
        seen = tuple(session.execute(experiments).one())
        made = tuple(session.execute(ablations).one())
    digest = hashlib.blake2b(repr((seen, made)).encode(), digest_size=12).hexdigest()
    return ChangeMark(
        version=digest, experiments=int(seen[0]), ended=int(seen[7]), ablations=int(made[0])
    )


class ChangeWatch:
    """The latest ChangeMark, read again when the one held is older than `every_s`; callers
    that ask meanwhile share the read."""

    def __init__(self, engine: Engine, every_s: float = CHANGES_POLL_S) -> None:
        self.engine = engine
        self.every_s = every_s
        self._mark: ChangeMark | None = None
        self._read_at = float("-inf")
        self._lock: anyio.Lock | None = None

    async def current(self) -> ChangeMark:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._mark is None or time.monotonic() - self._read_at >= self.every_s:
                self._mark = await run_in_threadpool(read_mark, self.engine)
                self._read_at = time.monotonic()
            return self._mark
