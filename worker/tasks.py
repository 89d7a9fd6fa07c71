"""Celery tasks. Thin on purpose: take an id, hand it to worker/job.py, which re-fetches the
experiment from the store, runs the engine and writes the outcome back.

Each pool process builds its own database engine once, after the fork (a pooled connection
must never cross a fork), from the one Settings object, and hands it to the job explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_ready, worker_shutting_down
from celery.utils.log import get_task_logger
from sqlalchemy import Engine

from core.broker import RUN_EXPERIMENT_TASK
from core.settings import Settings, get_settings
from core.store.session import make_engine
from worker import shutdown
from worker.celery_app import celery_app

logger = get_task_logger(__name__)


@dataclass(frozen=True)
class ProcessContext:
    settings: Settings
    engine: Engine


_context: ProcessContext | None = None


def process_context() -> ProcessContext:
    global _context
    if _context is None:
        settings = get_settings()
        _context = ProcessContext(settings, make_engine(settings.effective_database_url))
    return _context


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _prepare_pool_process(**_: Any) -> None:
    shutdown.prepare_pool_process()
    # Import torch and the engine when a pool process starts rather than when its first run
    # arrives, so a submitted experiment starts training at once; the datasets follow in a
    # thread (worker/warm.py), since Celery waits only seconds for a pool process to be up.
    import worker.engine  # noqa: F401
    from worker.warm import warm_in_background

    context = process_context()
    warm_in_background(context.settings)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _guard_master(**_: Any) -> None:
    shutdown.guard_master(get_settings().shutdown_grace_s)


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _shutting_down(**_: Any) -> None:
    # Celery's own handler announces a shutdown: this also covers a signal that came while
    # the worker was still starting (before worker_ready put the guard in place).
    shutdown.begin_shutdown(get_settings().shutdown_grace_s)


@celery_app.task(name=RUN_EXPERIMENT_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def run_experiment(experiment_id: str) -> str:
    from worker.fused_job import run_delivery
    from worker.job import NOT_TAKEN

    context = process_context()
    outcome = run_delivery(
        experiment_id,
        context.engine,
        context.settings,
        shutting_down=shutdown.hand_back_requested,
    )
    logger.info("experiment %s: %s", experiment_id, outcome)
    if outcome == NOT_TAKEN:  # the message goes back to the broker for another worker
        raise Reject(outcome, requeue=True)
    return outcome
