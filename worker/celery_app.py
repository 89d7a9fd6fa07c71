"""The Celery app. Importing it is cheap (no torch): the API imports it only to send tasks.

Reliability settings, chosen on purpose:
- task_acks_late: the message is acknowledged when the task returns, not when it starts, so a
  worker that dies mid-run leaves its message on the broker to be delivered again.
- task_reject_on_worker_lost: if the pool child is killed (OOM, SIGKILL) the message is
  requeued instead of acknowledged as failed.
- worker_prefetch_multiplier=1: a worker reserves one run at a time; training runs are long,
  and a prefetched message would wait behind the current run while another worker sits idle.
- visibility_timeout above the longest run a spec may ask for (settings): Redis redelivers an
  unacknowledged message after this long, and doing so while it still runs would start a twin.
- No result backend: outcomes live in the experiment store, which the task writes itself.
Redelivery after a SIGKILL would only come after the visibility timeout, so the store also
keeps a heartbeat per running experiment and a reaper (api/reaper.py) requeues the ones whose
worker went silent; claims are atomic, so a late twin delivery finds nothing to do.
"""

from __future__ import annotations

from celery import Celery

from api.settings import Settings, get_settings

RUN_EXPERIMENT_TASK = "trainlab.run_experiment"
TRAINING_QUEUE = "trainlab.training"


def make_celery(settings: Settings) -> Celery:
    app = Celery("trainlab", broker=settings.effective_broker_url, include=["worker.tasks"])
    sqla = settings.broker_is_sqlalchemy
    if settings.uses_embedded_broker:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        task_default_queue=TRAINING_QUEUE,
        task_routes={RUN_EXPERIMENT_TASK: {"queue": TRAINING_QUEUE}},
        broker_connection_retry_on_startup=True,
        # kombu's SQLAlchemy transport hands every transport option to create_engine(), which
        # refuses unknown ones; it has no visibility timeout and polls once a second by default.
        broker_transport_options=(
            {} if sqla else {"visibility_timeout": settings.visibility_timeout_s}
        ),
        # The SQLAlchemy transport has no fan-out exchanges, which remote control needs.
        worker_enable_remote_control=not sqla,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery(get_settings())
