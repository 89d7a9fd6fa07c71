"""No experiment is left `running` forever, and none stays queued without a message.

Each pass: a running experiment whose heartbeat is older than the timeout lost its worker
(SIGKILL, OOM, host gone). It is requeued to resume from its last checkpoint, or marked
`failed` once it has used up its attempts, or `cancelled` if a cancel was already asked for.
Then every queued experiment without a broker message is sent. Passes are safe to run from
several API processes at once: each change is a conditional UPDATE naming the attempt seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from api.background.dispatch import Dispatcher
from core import store
from core.settings import Settings
from core.store.models import Status

logger = logging.getLogger(__name__)

# A message is sent right after the experiment is committed; give that a moment before
# treating a queued experiment without one as lost. (Requeued ones are older than this.)
DISPATCH_GRACE_S = 5.0


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.sent)


def reap_once(dispatcher: Dispatcher, settings: Settings) -> ReapReport:
    report = ReapReport()
    with store.session_scope(dispatcher.engine) as session:
        for exp in store.stale_running(session, stale_after_s=settings.heartbeat_timeout_s):
            silent = f"worker {exp.worker or '?'} stopped sending heartbeats"
            if exp.cancel_requested:
                if store.finish(
                    session,
                    exp.id,
                    exp.attempt,
                    status=Status.cancelled,
                    error=f"{silent} after the cancel was asked for",
                ):
                    report.cancelled.append(exp.id)
            elif exp.attempt >= settings.max_attempts:
                if store.fail(session, exp.id, f"{silent}; gave up after {exp.attempt} attempts"):
                    report.failed.append(exp.id)
            elif store.requeue(
                session,
                exp.id,
                expected_attempt=exp.attempt,
                stale_after_s=settings.heartbeat_timeout_s,
            ):
                report.requeued.append(exp.id)
    with store.session_scope(dispatcher.engine) as session:
        pending = store.undispatched(session, older_than_s=DISPATCH_GRACE_S)
    # A requeued run goes out at once; the grace is for messages still being sent.
    report.sent = dispatcher.dispatch_all(dict.fromkeys([*report.requeued, *pending]))
    if report:
        logger.warning("reaper: %s", report)
    return report


@contextlib.asynccontextmanager
async def reaper_running(
    dispatcher: Dispatcher,
    settings: Settings,
    on_report: Callable[[ReapReport], None] | None = None,
) -> AsyncIterator[None]:
    """Run reap passes in the background for as long as the API process lives; `on_report`
    sees each pass's report (the /metrics counters of reaper actions)."""

    async def loop() -> None:
        while True:
            try:
                report = await asyncio.to_thread(reap_once, dispatcher, settings)
                if on_report is not None:
                    on_report(report)
            except Exception:  # the store may be briefly unreachable; try again next pass
                logger.exception("reaper pass failed")
            await asyncio.sleep(settings.reaper_interval_s)

    task = asyncio.create_task(loop(), name="trainlab-reaper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
