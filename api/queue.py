"""Sending run messages to the broker. Only the experiment id travels: the worker re-reads
everything else from the store, so a message can never carry a stale spec."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from api.settings import get_settings

if TYPE_CHECKING:
    from celery import Celery

_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()


def celery_for_settings() -> Celery:
    """The Celery app for the current settings' broker. Normally the worker module's app;
    a process whose settings were changed after that import (tests) gets one of its own."""
    from worker.celery_app import celery_app, make_celery

    settings = get_settings()
    url = settings.effective_broker_url
    if celery_app.conf.broker_url == url:
        return celery_app
    with _apps_lock:
        app = _apps.get(url)
        if app is None:
            app = _apps[url] = make_celery(settings)
        return app


def enqueue_run(experiment_id: str) -> None:
    """Hand the experiment to the broker; raises when the broker can't take it (the caller
    keeps the experiment queued, and the reaper sends it again later)."""
    from worker.celery_app import RUN_EXPERIMENT_TASK

    celery_for_settings().send_task(RUN_EXPERIMENT_TASK, args=[experiment_id])
