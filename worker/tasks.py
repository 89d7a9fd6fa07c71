"""Celery tasks. Thin on purpose: take an id, hand it to experiment_job, which re-fetches the
experiment from the store, runs the engine and writes the outcome back."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from worker.celery_app import RUN_EXPERIMENT_TASK, celery_app

logger = get_task_logger(__name__)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _load_training_stack(**_: Any) -> None:
    # Import torch and the engine when a pool process starts rather than when its first run
    # arrives, so a submitted experiment starts training at once. Only workers run this.
    import worker.engine  # noqa: F401


@celery_app.task(name=RUN_EXPERIMENT_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def run_experiment(experiment_id: str) -> str:
    # The job code (and torch with it) is imported here, in the worker process only.
    from worker.experiment_job import run_experiment_by_id

    outcome = run_experiment_by_id(experiment_id)
    logger.info("experiment %s: %s", experiment_id, outcome)
    return outcome
