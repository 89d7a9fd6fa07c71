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

The store, not the broker, says what must run. A message can be lost while its experiment is
still queued (Redis restarted without persistence or flushed; a worker killed after taking a
message and before claiming the run, whose message then waits out the visibility timeout on
Redis and is never redelivered by the SQLAlchemy transport). `Broker.held_runs` reads which
runs the broker still holds a live message for, so the reaper can send again exactly the
queued experiments whose message is gone, and leave a long queue alone.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from core.settings import Settings

logger = logging.getLogger(__name__)

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
        # On a lost broker connection a running training goes on (it reports to the store,
        # not the broker) rather than being killed to have its message redelivered: the
        # reaper resends what the broker lost. Said here, since Celery 6 turns it on.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
    )
    return app


@dataclass(frozen=True)
class Audit:
    """What the broker holds: `held`, the runs with a live message; `stale_taken`, delivery
    tag -> run of each message a worker took longer ago than the bound and never acknowledged
    (its worker died, hangs, or is busy with another run that message let it claim)."""

    held: set[str]
    stale_taken: dict[str, str] = field(default_factory=dict)


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

    def held_runs(self, *, delivered_within_s: float) -> set[str] | None:
        """Ids of the experiments the broker holds a live run message for: waiting in the queue,
        or taken by a worker less than `delivered_within_s` ago and not yet acknowledged (a
        worker between taking a message and claiming its run). A message a worker took longer
        ago than that, for an experiment still queued, belongs to a worker that died or hangs:
        it doesn't count. None when this kind of broker can't be read (AMQP redelivers a dead
        consumer's messages itself)."""
        found = self.audit(delivered_within_s=delivered_within_s)
        return None if found is None else found.held

    def audit(self, *, delivered_within_s: float) -> Audit | None:
        """`held_runs`, plus the messages taken longer ago than that and still unacknowledged
        (Redis only: the SQLAlchemy transport never hands a taken message out again)."""
        url = self.settings.effective_broker_url
        if url.startswith("sqla+"):
            return Audit(held=_sqla_held(self._sqla(), TRAINING_QUEUE))
        if url.startswith(("redis://", "rediss://")):
            return _redis_audit(url, TRAINING_QUEUE, delivered_within_s)
        return None

    def drop_taken(self, tags: Iterable[str]) -> int:
        """Remove these unacknowledged deliveries (Redis), so that they are never handed out
        again after the visibility timeout; how many were there. A worker that is in fact
        still busy with one loses nothing: its acknowledgement, or its rejection with requeue,
        then finds no entry and does nothing (kombu), and the store decides what runs."""
        tags = list(tags)
        url = self.settings.effective_broker_url
        if not tags or not url.startswith(("redis://", "rediss://")):
            return 0
        from kombu.transport.redis import Channel

        client: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)
        try:
            pipe = client.pipeline()
            pipe.hdel(Channel.unacked_key, *tags)
            pipe.zrem(Channel.unacked_index_key, *tags)
            removed, _ = pipe.execute()
            return int(removed)
        finally:
            client.close()

    def forget_taken(self) -> int:
        """Delete the messages workers took from the SQLAlchemy transport; how many. kombu
        marks a taken message invisible and never reads it again (a message given back is
        written anew), but never deletes it either: a year of runs on the embedded broker
        would keep every one. Other brokers remove what is taken themselves: 0."""
        if not self.settings.effective_broker_url.startswith("sqla+"):
            return 0
        query = text("DELETE FROM kombu_message WHERE visible = :visible")
        try:
            with self._sqla().begin() as connection:
                return connection.execute(query, {"visible": False}).rowcount
        except OperationalError as exc:
            if "no such table" in str(exc):  # nothing was ever sent through this broker file
                return 0
            raise

    def _sqla(self) -> Engine:
        if self._sqla_engine is None:
            url = self.settings.effective_broker_url.removeprefix("sqla+")
            self._sqla_engine = create_engine(url)
        return self._sqla_engine

    def check(self) -> None:
        """Raises when the broker does not accept a connection within about two seconds."""
        url = self.settings.effective_broker_url
        if url.startswith("sqla+"):
            # The SQLAlchemy transport opens no connection until it sends; query its database.
            with self._sqla().connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=2
            )


# Reading what the broker holds --------------------------------------------------------------
# Both transports keep each message as kombu's JSON envelope: the task name in its headers and
# the body ([args, kwargs, embed], base64) carrying the experiment id.

_PAGE = 1000


def _run_id(raw: str | bytes | dict[str, Any]) -> str | None:
    """The experiment id of a run message (an envelope, or its JSON), None for anything else
    (or unreadable)."""
    try:
        envelope = raw if isinstance(raw, dict) else json.loads(raw)
        if envelope.get("headers", {}).get("task") != RUN_EXPERIMENT_TASK:
            return None
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        logger.warning("unreadable message on the broker: %.200r", raw)
        return None


def _ids(raws: Iterable[str | bytes | dict[str, Any]]) -> set[str]:
    return {run for run in map(_run_id, raws) if run is not None}


def _unacked_envelope(entry: bytes) -> bytes | dict[str, Any]:
    """An `unacked` entry is [envelope, exchange, routing_key]."""
    try:
        envelope = json.loads(entry)[0]
    except (ValueError, IndexError, KeyError, TypeError):
        return entry
    return envelope if isinstance(envelope, dict) else entry


def _sqla_held(engine: Engine, queue: str) -> set[str]:
    """The SQLAlchemy transport keeps a taken message as an invisible row, never handed out
    again and with no time of delivery: only visible rows are messages still to come."""
    query = text(
        "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id "
        "WHERE q.name = :queue AND m.visible = :visible"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"queue": queue, "visible": True}).scalars()
            return _ids(rows)
    except OperationalError as exc:
        if "no such table" in str(exc):  # nothing was ever sent through this broker file
            return set()
        raise


def _redis_audit(url: str, queue: str, delivered_within_s: float) -> Audit:
    """kombu's Redis transport: waiting messages are list items (one list per priority step);
    a taken message sits in the `unacked` hash until acknowledged, with its time of delivery
    in the `unacked_index` sorted set."""
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    client: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)
    try:
        held: set[str] = set()
        for step in PRIORITY_STEPS:
            key = f"{queue}{Channel.sep}{step}" if step else queue
            # Pages from the head: new messages are pushed there and taken from the tail, so
            # a message may be seen twice while paging, never skipped.
            start = 0
            while True:
                page = client.lrange(key, start, start + _PAGE - 1)
                held |= _ids(page)
                if len(page) < _PAGE:
                    break
                start += _PAGE
        # Read after the lists: a message taken meanwhile is found here, freshly delivered.
        cutoff = time.time() - delivered_within_s
        stale: dict[str, str] = {}
        tags = client.zrangebyscore(Channel.unacked_index_key, "-inf", "+inf", withscores=True)
        for start in range(0, len(tags), _PAGE):
            page = tags[start : start + _PAGE]
            entries = client.hmget(Channel.unacked_key, [tag for tag, _ in page])
            for (tag, delivered), entry in zip(page, entries, strict=True):
                run = None if entry is None else _run_id(_unacked_envelope(entry))
                if run is None:
                    continue
                if delivered >= cutoff:
                    held.add(run)
                else:
                    stale[tag.decode() if isinstance(tag, bytes) else str(tag)] = run
        return Audit(held=held, stale_taken=stale)
    finally:
        client.close()
