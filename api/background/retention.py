"""The retention pass, beside the reaper in the API process: every
TRAINLAB_RETENTION_INTERVAL_S it deletes runs whose deletion waited for them to end, drops the
per-point loss rows of ended runs (their packed series stays) and, unless
TRAINLAB_KEEP_CHECKPOINTS is set, their checkpoints (core/store/pruning.py `sweep`). Safe from
several API processes at once: every delete names rows that are already redundant."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager

from sqlalchemy import Engine

from api.background.periodic import running_every
from api.services import predictors
from core.settings import Settings
from core.store import cache, pruning

logger = logging.getLogger(__name__)


def sweep_once(engine: Engine, settings: Settings) -> pruning.SweepReport:
    report = pruning.sweep_until_done(engine, keep_checkpoints=settings.keep_checkpoints)
    # The store's own caches forget deleted runs as it deletes them; the decoded models are
    # the API's.
    predictors.forget(str(engine.url), report.deleted)
    # And runs deleted through another API process: their entries would sit in this one's
    # caches until the bounds pushed them out.
    cache.forget_deleted(engine)
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


def retention_running(engine: Engine, settings: Settings) -> AbstractAsyncContextManager[None]:
    return running_every(
        "trainlab-retention",
        settings.retention_interval_s,
        lambda: sweep_once(engine, settings),
        failed=lambda exc: logger.exception("retention pass failed", exc_info=exc),
    )
