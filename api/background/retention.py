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
    report = store.sweep_until_done(engine, keep_checkpoints=settings.keep_checkpoints)
    if report:
        logger.info(
            "retention: deleted %d experiments, compacted %d series, dropped %d checkpoints, "
            "%d bytes freed",
            len(report.deleted),
            len(report.compacted),
            len(report.checkpoints_dropped),
            report.freed_bytes,
        )
    return report


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
