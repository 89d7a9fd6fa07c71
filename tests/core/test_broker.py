"""What the broker holds, read from real brokers: kombu's SQLAlchemy transport on a SQLite file
and a real Redis database. A message a worker took (and never acknowledged, as a worker killed
before claiming leaves it) counts only while it is fresh; a flushed Redis holds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import text

from core.broker import TRAINING_QUEUE, Broker
from tests.conftest import (
    lease_redis_database,
    make_settings,
    release_redis_database,
    require_redis,
)


def take_as_a_dying_worker(broker: Broker) -> None:
    """Take the oldest run message as a worker does (not acknowledged), then drop the
    connection without handing the message back, as a worker killed at that moment does."""
    connection: Connection = broker.celery.connection_for_read()
    channel = connection.default_channel
    message = channel.basic_get(TRAINING_QUEUE, no_ack=False)
    assert message is not None, "no message to take"
    channel.do_restore = False  # a killed worker restores nothing
    connection.release()


@pytest.fixture
def sqla_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(make_settings(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    yield broker
    broker.close()


@pytest.fixture
def redis_broker() -> Iterator[Broker]:
    require_redis()
    url = lease_redis_database()
    broker = Broker(make_settings(broker_url=url))
    try:
        with broker.celery.connection_for_write() as connection:
            connection.default_channel.client.flushdb()
        yield broker
    finally:
        with broker.celery.connection_for_write() as connection:
            connection.default_channel.client.flushdb()
        broker.close()
        release_redis_database(url)


def test_the_sqlalchemy_broker_holds_waiting_messages_only(sqla_broker: Broker) -> None:
    assert sqla_broker.held_runs(delivered_within_s=60) == set()  # nothing ever sent
    for experiment_id in ("first", "second"):
        sqla_broker.send_run(experiment_id)
    assert sqla_broker.held_runs(delivered_within_s=60) == {"first", "second"}
    take_as_a_dying_worker(sqla_broker)
    # The transport never hands a taken message out again: it is not held any more.
    assert sqla_broker.held_runs(delivered_within_s=60) == {"second"}


def test_redis_holds_waiting_and_freshly_taken_messages(redis_broker: Broker) -> None:
    for experiment_id in ("first", "second", "third"):
        redis_broker.send_run(experiment_id)
    take_as_a_dying_worker(redis_broker)  # "first": taken, unacknowledged
    assert redis_broker.held_runs(delivered_within_s=60) == {"first", "second", "third"}
    # Taken longer ago than the bound: the worker that took it died or hangs.
    assert redis_broker.held_runs(delivered_within_s=0) == {"second", "third"}
    with redis_broker.celery.connection_for_write() as connection:
        connection.default_channel.client.flushdb()  # what a restart without persistence does
    assert redis_broker.held_runs(delivered_within_s=60) == set()


def test_a_broker_it_cannot_read_says_so() -> None:
    amqp = Broker(make_settings(broker_url="amqp://127.0.0.1:1//"))
    assert amqp.held_runs(delivered_within_s=60) is None


def test_a_stale_delivery_is_reported_and_dropped_for_good(redis_broker: Broker) -> None:
    from kombu.transport.redis import Channel

    for experiment_id in ("first", "second"):
        redis_broker.send_run(experiment_id)
    take_as_a_dying_worker(redis_broker)  # "first": taken, never acknowledged
    fresh = redis_broker.audit(delivered_within_s=60)
    assert fresh is not None and fresh.stale_taken == {}
    stale = redis_broker.audit(delivered_within_s=0)
    assert stale is not None and stale.held == {"second"}
    assert list(stale.stale_taken.values()) == ["first"]
    assert redis_broker.drop_taken(stale.stale_taken) == 1
    # Gone from the unacknowledged set and its index: never handed out again.
    with redis_broker.celery.connection_for_write() as connection:
        client = connection.default_channel.client
        assert client.hlen(Channel.unacked_key) == 0
        assert client.zcard(Channel.unacked_index_key) == 0
    after = redis_broker.audit(delivered_within_s=0)
    assert after is not None and after.stale_taken == {} and after.held == {"second"}
    assert redis_broker.drop_taken(stale.stale_taken) == 0  # twice is harmless


def test_taken_messages_are_deleted_from_the_sqlalchemy_broker(sqla_broker: Broker) -> None:
    assert sqla_broker.forget_taken() == 0  # nothing ever sent: no table yet
    for experiment_id in ("taken", "waiting"):
        sqla_broker.send_run(experiment_id)
    take_as_a_dying_worker(sqla_broker)
    assert sqla_broker.forget_taken() == 1
    assert sqla_broker.forget_taken() == 0
    assert sqla_broker.held_runs(delivered_within_s=60) == {"waiting"}
    with sqla_broker._sqla().connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM kombu_message")).scalar_one()
    assert left == 1


def test_other_brokers_delete_what_is_taken_themselves(redis_broker: Broker) -> None:
    redis_broker.send_run("taken")
    take_as_a_dying_worker(redis_broker)
    assert redis_broker.forget_taken() == 0
    assert redis_broker.audit(delivered_within_s=60) is not None
