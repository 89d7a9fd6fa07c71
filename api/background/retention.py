"""The retention pass, beside the reaper in the API process: every
TRAINLAB_RETENTION_INTERVAL_S it deletes runs whose deletion waited for them to end, drops the
per-point loss rows of ended runs (their packed series stays) and, unless
TRAINLAB_KEEP_CHECKPOINTS is set, their checkpoints (core/store/pruning.py `sweep`). Safe from
several API processes at once: every delete names rows that are already redundant."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import Engine

from core import store
from core.settings import Settings

logger = logging.getLogger(__name__)


def sweep_once(engine: Engine, settings: Settings) -> store.SweepReport:
    """Passes until nothing is left (each pass handles a bounded batch in its own transaction)."""
    total = store.SweepReport()
    while True:
        with store.session_scope(engine) as session:
            report = store.sweep(session, keep_checkpoints=settings.keep_checkpoints)
        total.deleted += report.deleted
        total.compacted += report.compacted
        total.checkpoints_dropped += report.checkpoints_dropped
        total.freed_bytes += report.freed_bytes
        if not report:
            break
    if total:
        logger.info(
            "retention: deleted %d experiments, compacted %d series, dropped %d checkpoints, "
            "%d bytes freed",
            len(total.deleted),
            len(total.compacted),
            len(total.checkpoints_dropped),
            total.freed_bytes,
        )
    return total


@contextlib.asynccontextmanager
async def retention_running(engine: Engine, settings: Settings) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(sweep_once, engine, settings)
            except Exception:  # the store may be briefly unreachable; try again next pass
                logger.exception("retention pass failed")
            await asyncio.sleep(settings.retention_interval_s)

    task = asyncio.create_task(loop(), name="trainlab-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
