"""The broker: the task and queue names both sides agree on, the Celery configuration they
share, and the sender the API uses. The API sends tasks by name and never imports the worker
package; only the experiment id travels, so a message can never carry a stale spec.

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
keeps a heartbeat per running experiment and the API's reaper requeues the ones whose worker
went silent; claims are atomic, so a late twin delivery finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy import Engine, create_engine, text

from core.settings import Settings

RUN_EXPERIMENT_TASK = "trainlab.run_experiment"
TRAINING_QUEUE = "trainlab.training"


def make_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    """A Celery app on the settings' broker. The worker passes its task modules in `include`;
    the API passes none, since it only sends by name."""
    app = Celery("trainlab", broker=settings.effective_broker_url, include=list(include))
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


class Broker:
    """What the API does with the broker: send a run, and check that it answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.celery = make_celery(settings)
        self._sqla_engine: Engine | None = None

    def close(self) -> None:
        if self._sqla_engine is not None:
            self._sqla_engine.dispose()

    def send_run(self, experiment_id: str) -> None:
        """Hand the experiment to the broker; raises when the broker can't take it (the caller
        keeps the experiment queued, and the reaper sends it again later)."""
        self.celery.send_task(RUN_EXPERIMENT_TASK, args=[experiment_id])

    def check(self) -> None:
        """Raises when the broker does not accept a connection within about two seconds."""
        url = self.settings.effective_broker_url
        if url.startswith("sqla+"):
            # The SQLAlchemy transport opens no connection until it sends; query its database.
            if self._sqla_engine is None:
                self._sqla_engine = create_engine(url.removeprefix("sqla+"))
            with self._sqla_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=2
            )
