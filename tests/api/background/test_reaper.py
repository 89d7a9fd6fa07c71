"""Reaper passes against the real store and real brokers (the embedded SQLite broker, and a
Redis database): what they requeue, fail, cancel and send, which lost messages they send
again, and what they leave alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.background.dispatch import Dispatcher
from api.background.reaper import DISPATCH_GRACE_S, Reaper
from core.broker import Broker
from core.settings import Settings
from core.store import experiments, runs
from core.store.session import make_engine, session_scope
from tests.api.conftest import BrokerMessageReader
from tests.conftest import lease_redis_database, release_redis_database, require_redis
from tests.core.store.helpers import backdate, queued, read, running
from tests.core.test_broker import take_as_a_dying_worker


@pytest.fixture
def dispatcher(settings: Settings, engine: Engine) -> Iterator[Dispatcher]:
    broker = Broker(settings)
    yield Dispatcher(engine, broker)
    broker.close()


def reaper(dispatcher: Dispatcher, settings: Settings) -> Reaper:
    """A reaper that has seen the store answer for a long time already."""
    return Reaper(dispatcher, settings, store_up_since=float("-inf"))


def test_a_silent_run_is_requeued_and_sent_again(
    dispatcher: Dispatcher,
    settings: Settings,
    engine: Engine,
    broker_messages: BrokerMessageReader,
) -> None:
    silent, attempt = running(engine)
    alive, _ = running(engine)
    backdate(engine, silent, heartbeat_s=settings.heartbeat_timeout_s + 5)
    passes = reaper(dispatcher, settings)
    report = passes.reap_once()
    assert report.requeued == [silent] and report.sent == [silent]
    requeued = read(engine, silent)
    assert requeued.status == "queued" and requeued.attempt == attempt
    assert requeued.dispatched_at is not None  # the new message reached the broker
    assert len(broker_messages.runs_for(silent)) == 1
    assert read(engine, alive).status == "running"
    assert not passes.reap_once()  # nothing more to do


def test_out_of_attempts_fails_and_a_cancelled_one_ends_cancelled(
    dispatcher: Dispatcher, settings: Settings, engine: Engine
) -> None:
    exhausted, _ = running(engine)
    for _ in range(settings.max_attempts - 1):
        backdate(engine, exhausted, heartbeat_s=settings.heartbeat_timeout_s + 5)
        with session_scope(engine) as session:
            assert runs.claim(session, exhausted, worker="w", stale_after_s=1)
    asked_to_stop, _ = running(engine)
    with session_scope(engine) as session:
        experiments.request_cancel(session, asked_to_stop)
    for experiment_id in (exhausted, asked_to_stop):
        backdate(engine, experiment_id, heartbeat_s=settings.heartbeat_timeout_s + 5)
    report = reaper(dispatcher, settings).reap_once()
    assert report.failed == [exhausted] and report.cancelled == [asked_to_stop]
    failed = read(engine, exhausted)
    assert failed.status == "failed" and f"after {settings.max_attempts} lost attempts" in str(
        failed.error
    )
    assert read(engine, asked_to_stop).status == "cancelled"


def test_handed_back_attempts_are_not_lost_ones(
    dispatcher: Dispatcher, settings: Settings, engine: Engine
) -> None:
    """Workers that shut down gracefully hand the run back; any number of such restarts
    leaves the run its full TRAINLAB_MAX_ATTEMPTS for real losses."""
    restarted, attempt = running(engine)
    for _ in range(settings.max_attempts + 1):  # deploys, each handing the run back
        with session_scope(engine) as session:
            assert runs.requeue(session, restarted, expected_attempt=attempt, handed_back=True)
            attempt = runs.claim(session, restarted, worker="w", stale_after_s=1)
            assert attempt is not None
    assert read(engine, restarted).handbacks == settings.max_attempts + 1
    backdate(engine, restarted, heartbeat_s=settings.heartbeat_timeout_s + 5)
    report = reaper(dispatcher, settings).reap_once()
    assert report.requeued == [restarted] and not report.failed  # one attempt lost of three
    lost_requeue = read(engine, restarted)
    assert lost_requeue.status == "queued" and lost_requeue.handbacks == settings.max_attempts + 1


def test_only_queued_runs_the_broker_never_got_are_sent_after_a_grace(
    dispatcher: Dispatcher,
    settings: Settings,
    engine: Engine,
    broker_messages: BrokerMessageReader,
) -> None:
    fresh = queued(engine)
    old = queued(engine)
    backdate(engine, old, created_s=DISPATCH_GRACE_S + 1)
    report = reaper(dispatcher, settings).reap_once()
    assert report.sent == [old]
    assert broker_messages.runs_for(old) and not broker_messages.runs_for(fresh)


def test_a_broker_that_is_down_leaves_the_run_to_the_next_pass(
    settings: Settings, engine: Engine
) -> None:
    down = Broker(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    old = queued(engine)
    backdate(engine, old, created_s=DISPATCH_GRACE_S + 1)
    try:
        report = reaper(Dispatcher(engine, down), settings).reap_once()
    finally:
        down.close()
    assert report.sent == []
    assert read(engine, old).dispatched_at is None


def test_silent_runs_wait_until_the_store_has_answered_for_a_whole_timeout(
    dispatcher: Dispatcher, settings: Settings, engine: Engine
) -> None:
    """After an outage (or at the API's start) workers get one heartbeat timeout to beat
    again before their runs count as lost."""
    now = [1000.0]
    passes = Reaper(dispatcher, settings, clock=lambda: now[0])
    silent, _ = running(engine)
    backdate(engine, silent, heartbeat_s=settings.heartbeat_timeout_s + 5)
    assert passes.reap_once().requeued == []  # the store just came up, as far as it knows
    now[0] += settings.heartbeat_timeout_s
    assert passes.reap_once().requeued == [silent]

    # An outage: a pass that can't reach the store starts the wait over.
    again, _ = running(engine)
    backdate(engine, again, heartbeat_s=settings.heartbeat_timeout_s + 5)
    reachable = dispatcher.engine
    dispatcher.engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(Exception, match="refused"):
        passes.reap_once()
    dispatcher.engine = reachable
    now[0] += 1
    assert passes.reap_once().requeued == []
    now[0] += settings.heartbeat_timeout_s
    assert passes.reap_once().requeued == [again]


# Lost messages ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlalchemy", "redis"])
def own_broker(
    request: pytest.FixtureRequest, settings: Settings, engine: Engine, tmp_path: Path
) -> Iterator[Dispatcher]:
    """A dispatcher on a broker of this test's own: an empty SQLite broker file, or a leased
    Redis database, so the oldest message on it is this test's."""
    if request.param == "sqlalchemy":
        url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    else:
        require_redis()
        url = lease_redis_database()
    broker = Broker(settings.model_copy(update={"broker_url": url}))
    flush = _flusher(broker)
    flush()
    try:
        yield Dispatcher(engine, broker)
    finally:
        flush()
        broker.close()
        if request.param == "redis":
            release_redis_database(url)


def _flusher(broker: Broker) -> Callable[[], None]:
    """Empty the broker as a Redis restart without persistence does (a no-op on SQLite)."""

    def flush() -> None:
        if broker.settings.broker_is_sqlalchemy:
            return
        with broker.celery.connection_for_write() as connection:
            connection.default_channel.client.flushdb()

    return flush


def test_a_long_queue_is_left_alone_and_a_dead_worker_s_message_sent_again(
    own_broker: Dispatcher, settings: Settings, engine: Engine
) -> None:
    bound = settings.resend_lost_after_s
    waiting = [queued(engine) for _ in range(3)]
    assert own_broker.dispatch_all(waiting) == waiting
    for experiment_id in waiting:
        backdate(engine, experiment_id, dispatched_s=bound + 1)
    # Every message still on the broker: a long queue, nothing is sent again.
    assert reaper(own_broker, settings).reap_once().resent == []
    assert own_broker.broker.held_runs(delivered_within_s=bound) == set(waiting)

    # A worker takes the oldest message and dies before claiming its run.
    take_as_a_dying_worker(own_broker.broker)
    if (
        not own_broker.broker.settings.broker_is_sqlalchemy
    ):  # Redis: the taken message ages past the bound
        _age_unacked(own_broker.broker, bound + 1)
    report = reaper(own_broker, settings).reap_once()
    assert report.resent == [waiting[0]]
    assert own_broker.broker.held_runs(delivered_within_s=bound) == set(waiting)
    # The SQLAlchemy transport's taken row is deleted by the pass (it piled up for good).
    assert own_broker.broker.forget_taken() == 0
    # Sent again just now: not again on the next pass.
    assert reaper(own_broker, settings).reap_once().resent == []


@pytest.mark.parametrize("own_broker", ["redis"], indirect=True)
def test_a_broker_restarted_empty_gets_every_queued_run_again(
    own_broker: Dispatcher, settings: Settings, engine: Engine
) -> None:
    bound = settings.resend_lost_after_s
    waiting = [queued(engine) for _ in range(3)]
    own_broker.dispatch_all(waiting)
    for experiment_id in waiting:
        backdate(engine, experiment_id, dispatched_s=bound + 1)
    _flusher(own_broker.broker)()
    assert sorted(reaper(own_broker, settings).reap_once().resent) == sorted(waiting)
    assert own_broker.broker.held_runs(delivered_within_s=bound) == set(waiting)


def _age_unacked(broker: Broker, seconds: float) -> None:
    """Move every unacknowledged delivery `seconds` into the past (kombu keeps each one's
    time of delivery as its score in this sorted set)."""
    from kombu.transport.redis import Channel

    with broker.celery.connection_for_write() as connection:
        client = connection.default_channel.client
        for tag, score in client.zrange(Channel.unacked_index_key, 0, -1, withscores=True):
            client.zadd(Channel.unacked_index_key, {tag: score - seconds})


@pytest.mark.parametrize("own_broker", ["redis"], indirect=True)
def test_a_dead_worker_s_stale_deliveries_are_dropped_unless_their_run_runs(
    own_broker: Dispatcher, settings: Settings, engine: Engine
) -> None:
    """A delivery older than the bound, never acknowledged: Redis would hand it out again
    after two days. Dropped when its run is queued (sent again instead) or ended; kept while
    its run is running (its worker may be alive and acknowledge it at the end)."""
    bound = settings.resend_lost_after_s
    ids = [queued(engine) for _ in range(3)]
    own_broker.dispatch_all(ids)
    for _ in ids:
        take_as_a_dying_worker(own_broker.broker)
    for experiment_id in ids:
        backdate(engine, experiment_id, dispatched_s=bound + 1)
    _age_unacked(own_broker.broker, bound + 1)
    lost_queued, now_running, ended = ids
    with session_scope(engine) as session:
        assert runs.claim(session, now_running, worker="alive:1", stale_after_s=60) == 1
        assert runs.fail(session, ended, "ended elsewhere")
    report = reaper(own_broker, settings).reap_once()
    assert report.resent == [lost_queued]
    assert report.dropped == sorted([lost_queued, ended])
    found = own_broker.broker.audit(delivered_within_s=bound)
    assert found is not None
    assert list(found.stale_taken.values()) == [now_running]
    assert found.held == {lost_queued}  # its new message, waiting
