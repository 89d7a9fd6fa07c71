"""A fingerprint of everything the dashboard's lists show, read once per interval per
process however many clients watch it (GET /changes streams it).

The store's activity marks (core/store/census.py: one aggregate read over the experiments,
one over the ablations), which every change moves; the fingerprint is their digest. `ended`,
the number of finished experiments, is passed on so that a client can refresh heavier views
only when a run ends.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sqlalchemy import Engine

from core.store import census
from core.store.session import session_scope

# How often the store is read for changes (and so the most often a client hears of them).
CHANGES_POLL_S = 2.0


@dataclass(frozen=True)
class ChangeMark:
    version: str
    experiments: int
    ended: int
    ablations: int


def read_mark(engine: Engine) -> ChangeMark:
    with session_scope(engine) as session:
        marks = census.activity_marks(session)
    digest = hashlib.blake2b(repr((marks.experiments, marks.ablations)).encode(), digest_size=12)
    return ChangeMark(
        version=digest.hexdigest(),
        experiments=marks.experiment_count,
        ended=marks.ended,
        ablations=marks.ablation_count,
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
                # The read blocks: off the event loop, in the async runtime's thread pool.
                self._mark = await anyio.to_thread.run_sync(read_mark, self.engine)
                self._read_at = time.monotonic()
            return self._mark
