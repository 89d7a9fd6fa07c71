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

The retrying is tenacity's; what is ours is when to stop (patience counted from the first
failure, on the link's own clock, so tests move time by hand) and the pause: doubling from
FIRST_DELAY_S up to MAX_DELAY_S, each scaled by a random 0.8..1.2, never past the patience.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from core.store.faults import describe, is_store_error, is_transient
from core.store.session import session_scope

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 2.0
_BACKOFF = wait_exponential(multiplier=FIRST_DELAY_S, max=MAX_DELAY_S)


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


class _Outage:
    """One write's time without the store: since when it fails, and how long it has waited.
    tenacity calls `failed` after each failed try, before it asks `exhausted` and `pause`."""

    def __init__(self, what: str, patience_s: float, clock: Callable[[], float]) -> None:
        self.what = what
        self.patience_s = patience_s
        self.clock = clock
        self.since: float | None = None
        self.waited = 0.0

    def failed(self, state: RetryCallState) -> None:
        now = self.clock()
        if self.since is None:
            self.since = now
            logger.warning(
                "store unreachable while writing %s (%s); trying again for up to %.0f s",
                self.what,
                describe(_error(state)),
                self.patience_s,
            )
        self.waited = now - self.since

    def exhausted(self, state: RetryCallState) -> bool:
        return self.waited >= self.patience_s

    def pause(self, state: RetryCallState) -> float:
        # Jitter, so workers cut off together don't all come back in the same instant.
        jittered = _BACKOFF(state) * random.uniform(0.8, 1.2)
        return min(jittered, self.patience_s - self.waited)

    def give_up(self, state: RetryCallState) -> NoReturn:
        error = _error(state)
        raise StoreGone(self.what, self.waited, error) from error

    def recovered(self) -> None:
        if self.since is not None:
            logger.warning(
                "store reachable again after %.1f s; %s written",
                self.clock() - self.since,
                self.what,
            )


def _error(state: RetryCallState) -> BaseException:
    assert state.outcome is not None
    error = state.outcome.exception()
    assert error is not None
    return error


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
        outage = _Outage(what, self.patience_s, self._clock)
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            after=outage.failed,
            stop=outage.exhausted,
            wait=outage.pause,
            sleep=self._sleep,
            retry_error_callback=outage.give_up,
        )
        try:
            result: T = retrying(self._write, write)
        except Exception as exc:
            # Not transient (tenacity hands those on as they are): refused for good, or a
            # fault of the caller's, which is not the store's to judge.
            if not is_transient(exc) and is_store_error(exc):
                raise StoreRefused(what, exc) from exc
            raise
        outage.recovered()
        return result

    def _write(self, write: Callable[[Session], T]) -> T:
        with session_scope(self.engine) as session:
            return write(session)
