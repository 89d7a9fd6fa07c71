"""No experiment is left `running` forever, and none stays `queued` without a message.

The store is the source of truth for what must run; the broker only carries messages, and a
message can be lost. Each pass:

1. A running experiment whose heartbeat is older than the timeout lost its worker (SIGKILL,
   OOM, host gone, or a worker that gave up waiting for the store). It is requeued to resume
   from its last checkpoint, or marked `failed` once it has used up its attempts, or
   `cancelled` if a cancel was already asked for. Only once the store has answered this
   reaper for a whole heartbeat timeout: after an outage (or at the API's start), workers
   that kept training through it get that long to beat again before their runs count as lost.
2. Every queued experiment without a broker message (never sent, requeued, handed back by a
   worker that shut down) is sent.
3. Lost messages: a queued experiment whose last message is older than
   `TRAINLAB_RESEND_LOST_AFTER_S` is sent again if the broker no longer holds a live message
   for it (`Broker.held_runs`): neither waiting in the queue nor taken by a worker within that
   time. An experiment in a long queue still has its message there and is left alone.
   The same read finds the deliveries that workers took longer ago than that bound and never
   acknowledged; those whose run is not running (a dead worker's) are removed from the broker.

Passes are safe to run from several API processes at once: each change is a conditional UPDATE
naming the attempt seen, and a message sent twice finds nothing to claim the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from api.background.dispatch import Dispatcher
from api.background.periodic import running_every
from core.settings import Settings
from core.store import runs
from core.store.faults import describe, is_store_error
from core.store.models import Status
from core.store.recovery import running_among
from core.store.session import session_scope

logger = logging.getLogger(__name__)

# A message is sent right after the experiment is committed; give that a moment before
# treating a queued experiment without one as lost. (Requeued ones are older than this.)
DISPATCH_GRACE_S = 5.0
# An audit reads the broker's whole queue: the next one waits at least this many times as long
# as the last one took, so a huge queue costs the broker about 5% of one connection's time
# (a lost message then waits longer than the bound: the README's settings table says how much).
AUDIT_COST_FACTOR = 20.0
# With nothing waiting, the broker is still swept this often (in resend bounds) for the stale
# deliveries of dead workers.
SWEEP_EVERY_BOUNDS = 6


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    # Queued experiments whose message the broker had lost, sent again.
    resent: list[str] = field(default_factory=list)
    # Runs whose stale unacknowledged delivery (a dead worker's) was taken off the broker.
    dropped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.requeued
            or self.failed
            or self.cancelled
            or self.sent
            or self.resent
            or self.dropped
        )


class Reaper:
    """One API process's reaper. It remembers since when the store has answered it, and when
    it last compared the queue with the broker."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        settings: Settings,
        *,
        store_up_since: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self._clock = clock
        self._store_up_since = store_up_since
        self._next_audit = float("-inf")
        self._next_sweep = float("-inf")

    def reap_once(self) -> ReapReport:
        now = self._clock()
        if self._store_up_since is None:
            self._store_up_since = now
        try:
            return self._pass(now)
        except Exception as exc:
            if is_store_error(exc):  # an outage: workers get a full timeout once it is over
                self._store_up_since = None
            raise

    def _pass(self, now: float) -> ReapReport:
        report = ReapReport()
        assert self._store_up_since is not None
        if now - self._store_up_since >= self.settings.heartbeat_timeout_s:
            self._reap_silent(report)
        engine = self.dispatcher.engine
        with session_scope(engine) as session:
            pending = runs.undispatched(session, older_than_s=DISPATCH_GRACE_S)
        # A requeued run goes out at once; the grace is for messages still being sent.
        report.sent = self.dispatcher.dispatch_all(dict.fromkeys([*report.requeued, *pending]))
        if now >= self._next_audit:
            report.resent, report.dropped = self._audit(now)
        if report:
            logger.warning("reaper: %s", report)
        return report

    def _reap_silent(self, report: ReapReport) -> None:
        timeout = self.settings.heartbeat_timeout_s
        with session_scope(self.dispatcher.engine) as session:
            for exp in runs.stale_running(session, stale_after_s=timeout):
                silent = f"worker {exp.worker or '?'} stopped sending heartbeats"
                if exp.cancel_requested:
                    if runs.finish(
                        session,
                        exp.id,
                        exp.attempt,
                        status=Status.cancelled,
                        error=f"{silent} after the cancel was asked for",
                    ):
                        report.cancelled.append(exp.id)
                elif (lost := exp.attempt - exp.handbacks) >= self.settings.max_attempts:
                    if runs.fail(session, exp.id, f"{silent}; gave up after {lost} lost attempts"):
                        report.failed.append(exp.id)
                elif runs.requeue(
                    session, exp.id, expected_attempt=exp.attempt, stale_after_s=timeout
                ):
                    report.requeued.append(exp.id)

    def _audit(self, now: float) -> tuple[list[str], list[str]]:
        """Compare the queue with the broker: send again the queued experiments whose message
        the broker no longer holds, and drop the stale deliveries of dead workers."""
        bound = self.settings.resend_lost_after_s
        engine = self.dispatcher.engine
        with session_scope(engine) as session:
            anything_waits = bool(runs.waiting_since(session, sent_before_s=bound, limit=1))
        if not anything_waits and now < self._next_sweep:
            return [], []
        # The broker first, then the store: a message taken (and its run claimed) between the
        # two reads was seen on the broker, so only a message really gone counts as lost.
        started = self._clock()
        try:
            found = self.dispatcher.broker.audit(delivered_within_s=bound)
        except Exception as exc:  # a broker that is down can't be compared; next time
            logger.warning("reaper: could not read the broker: %s: %s", type(exc).__name__, exc)
            return [], []
        # Reading the whole queue is what a pass costs most: spent at most ~5% of the time.
        spacing = max(bound / 4, AUDIT_COST_FACTOR * (self._clock() - started))
        self._next_audit = now + spacing
        self._next_sweep = now + SWEEP_EVERY_BOUNDS * bound
        if found is None:
            return [], []
        try:
            self.dispatcher.broker.forget_taken()
        except Exception as exc:  # left for the next audit
            logger.warning("reaper: could not delete taken messages: %s", exc)
        with session_scope(engine) as session:
            waiting = runs.waiting_since(session, sent_before_s=bound)
            busy = running_among(session, set(found.stale_taken.values()))
        lost = [experiment_id for experiment_id in waiting if experiment_id not in found.held]
        if lost:
            logger.warning("reaper: the broker holds no message for queued %s; sending", lost)
        resent = self.dispatcher.dispatch_all(lost)
        # A stale delivery whose run is not running is never needed again: its run is queued
        # (and has a live message, sent just now if need be), ended, or gone. Left there, Redis
        # would hand it out once more after the visibility timeout (two days).
        stale = {tag: run for tag, run in found.stale_taken.items() if run not in busy}
        try:
            self.dispatcher.broker.drop_taken(stale)
        except Exception as exc:  # left for the next audit
            logger.warning("reaper: could not drop stale deliveries: %s", exc)
            return resent, []
        return resent, sorted(set(stale.values()))


def reaper_running(
    dispatcher: Dispatcher,
    settings: Settings,
    on_report: Callable[[ReapReport], None] | None = None,
) -> AbstractAsyncContextManager[None]:
    """Run reap passes in the background for as long as the API process lives; `on_report`
    sees each pass's report (the /metrics counters of reaper actions)."""
    reaper = Reaper(dispatcher, settings)

    def failed(exc: Exception) -> None:
        if is_store_error(exc):
            logger.warning("reaper pass failed: %s", describe(exc))
        else:
            logger.exception("reaper pass failed", exc_info=exc)

    return running_every(
        "trainlab-reaper",
        settings.reaper_interval_s,
        reaper.reap_once,
        after=on_report or (lambda _: None),
        failed=failed,
    )
