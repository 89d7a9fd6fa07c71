"""One reaper pass against the real store and the real embedded broker: what it requeues,
fails, cancels and sends, and what it leaves alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from api.background.dispatch import Dispatcher
from api.background.reaper import DISPATCH_GRACE_S, reap_once
from core import store
from core.broker import Broker
from core.settings import Settings
from tests.api.conftest import BrokerMessageReader
from tests.core.store.helpers import backdate, queued, read, running


@pytest.fixture
def dispatcher(settings: Settings, engine: Engine) -> Iterator[Dispatcher]:
    broker = Broker(settings)
    yield Dispatcher(engine, broker)
    broker.close()


def test_a_silent_run_is_requeued_and_sent_again(
    dispatcher: Dispatcher,
    settings: Settings,
    engine: Engine,
    broker_messages: BrokerMessageReader,
) -> None:
    silent, attempt = running(engine)
    alive, _ = running(engine)
    backdate(engine, silent, heartbeat_s=settings.heartbeat_timeout_s + 5)
    report = reap_once(dispatcher, settings)
    assert report.requeued == [silent] and report.sent == [silent]
    requeued = read(engine, silent)
    assert requeued.status == "queued" and requeued.attempt == attempt
    assert requeued.dispatched_at is not None  # the new message reached the broker
    assert len(broker_messages.runs_for(silent)) == 1
    assert read(engine, alive).status == "running"
    assert not reap_once(dispatcher, settings)  # nothing more to do


def test_out_of_attempts_fails_and_a_cancelled_one_ends_cancelled(
    dispatcher: Dispatcher, settings: Settings, engine: Engine
) -> None:
    exhausted, _ = running(engine)
    for _ in range(settings.max_attempts - 1):
        backdate(engine, exhausted, heartbeat_s=settings.heartbeat_timeout_s + 5)
        with store.session_scope(engine) as session:
            assert store.claim(session, exhausted, worker="w", stale_after_s=1)
    asked_to_stop, _ = running(engine)
    with store.session_scope(engine) as session:
        store.request_cancel(session, asked_to_stop)
    for experiment_id in (exhausted, asked_to_stop):
        backdate(engine, experiment_id, heartbeat_s=settings.heartbeat_timeout_s + 5)
    report = reap_once(dispatcher, settings)
    assert report.failed == [exhausted] and report.cancelled == [asked_to_stop]
    failed = read(engine, exhausted)
    assert failed.status == "failed" and f"after {settings.max_attempts} attempts" in str(
        failed.error
    )
    assert read(engine, asked_to_stop).status == "cancelled"


def test_only_queued_runs_the_broker_never_got_are_sent_after_a_grace(
    dispatcher: Dispatcher,
    settings: Settings,
    engine: Engine,
    broker_messages: BrokerMessageReader,
) -> None:
    fresh = queued(engine)
    old = queued(engine)
    backdate(engine, old, created_s=DISPATCH_GRACE_S + 1)
    report = reap_once(dispatcher, settings)
    assert report.sent == [old]
    assert broker_messages.runs_for(old) and not broker_messages.runs_for(fresh)


def test_a_broker_that_is_down_leaves_the_run_to_the_next_pass(
    settings: Settings, engine: Engine
) -> None:
    down = Broker(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    old = queued(engine)
    backdate(engine, old, created_s=DISPATCH_GRACE_S + 1)
    try:
        report = reap_once(Dispatcher(engine, down), settings)
    finally:
        down.close()
    assert report.sent == []
    assert read(engine, old).dispatched_at is None
