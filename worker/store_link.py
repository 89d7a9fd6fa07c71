"""A running job's writes to the store, tried again while the store is away.

Every write a job makes is idempotent (loss points keyed by step and inserted ignoring
conflicts, the checkpoint replaced under the owner's row lock, state changes naming the
attempt), so a write whose connection dropped (or whose commit's answer was lost) is simply
made again. A transient error (core/store/faults.py) waits with backoff: the training thread
sits in the write, so the run pauses while the database is away and goes on when it is back.
Only once the store has been unreachable for `patience_s` does the write give up with
`StoreGone`: the job then stops writing and leaves the run to the reaper, which resumes it
from its checkpoint. A permanent error (the store refuses this write, and always will) is
raised at once as `StoreRefused`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from core.store.faults import describe, is_store_error, is_transient
from core.store.session import session_scope

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 2.0


class StoreGone(Exception):
    """The store stayed unreachable for longer than the job's patience."""

    def __init__(self, what: str, waited_s: float, cause: BaseException) -> None:
        super().__init__(
            f"store unreachable for {waited_s:.0f} s while writing {what}: {describe(cause)}"
        )


class StoreRefused(Exception):
    """The store refused a write for good (a value it cannot hold, a broken constraint)."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"the store refused {what}: {describe(cause)}")


class StoreLink:
    def __init__(
        self,
        engine: Engine,
        *,
        patience_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.patience_s = patience_s
        self._sleep = sleep
        self._clock = clock

    def run(self, what: str, write: Callable[[Session], T]) -> T:
        """`write` in a session of its own, committed; made again after a transient error
        until it succeeds or `patience_s` has passed since the first failure."""
        failing_since: float | None = None
        delay = FIRST_DELAY_S
        while True:
            try:
                with session_scope(self.engine) as session:
                    result = write(session)
            except Exception as exc:
                if not is_transient(exc):
                    if is_store_error(exc):
                        raise StoreRefused(what, exc) from exc
                    raise
                now = self._clock()
                if failing_since is None:
                    failing_since = now
                    logger.warning(
                        "store unreachable while writing %s (%s); trying again for up to %.0f s",
                        what,
                        describe(exc),
                        self.patience_s,
                    )
                waited = now - failing_since
                if waited >= self.patience_s:
                    raise StoreGone(what, waited, exc) from exc
                # Jitter, so workers cut off together don't all come back in the same instant.
                self._sleep(min(delay * random.uniform(0.8, 1.2), self.patience_s - waited))
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            if failing_since is not None:
                logger.warning(
                    "store reachable again after %.1f s; %s written",
                    self._clock() - failing_since,
                    what,
                )
            return result
