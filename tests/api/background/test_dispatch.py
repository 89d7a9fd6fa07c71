"""Coalesced dispatch (what the submit route does after answering), against the real store
and the embedded broker: under a burst from many threads every experiment is sent exactly
once and stamped, one caller sends for the others, and one the broker refuses stays
undispatched for the reaper."""

from __future__ import annotations

import threading
import time
from typing import cast

from sqlalchemy import Engine

from api.background.dispatch import Dispatcher
from core.broker import Broker
from core.settings import Settings
from core.store import runs
from core.store.session import session_scope
from tests.api.conftest import BrokerMessageReader
from tests.core.store.helpers import queued, read


class SlowBroker:
    """The real broker, slowed down so that callers pile up behind a sender, and refusing
    the ids in `refuse`."""

    def __init__(self, broker: Broker, refuse: set[str]) -> None:
        self.broker = broker
        self.refuse = refuse
        self.senders: list[str] = []

    def send_run(self, experiment_id: str) -> None:
        self.senders.append(threading.current_thread().name)
        time.sleep(0.02)
        if experiment_id in self.refuse:
            raise ConnectionError("broker down")
        self.broker.send_run(experiment_id)


def test_a_burst_is_sent_once_each_by_few_senders_and_a_refused_one_waits(
    settings: Settings, engine: Engine, broker_messages: BrokerMessageReader
) -> None:
    ids = [queued(engine) for _ in range(12)]
    real = Broker(settings)
    slow = SlowBroker(real, refuse={ids[5]})
    dispatcher = Dispatcher(engine, cast(Broker, slow), write_lock=threading.Lock())
    start = threading.Barrier(len(ids))

    def submit(experiment_id: str) -> None:
        start.wait()
        dispatcher.dispatch_coalesced(experiment_id)

    threads = [threading.Thread(target=submit, args=(i,), name=f"t{n}") for n, i in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    real.close()

    for experiment_id in ids:
        sent = broker_messages.runs_for(experiment_id)
        stamped = read(engine, experiment_id).dispatched_at
        if experiment_id == ids[5]:
            assert sent == [] and stamped is None  # the reaper sends it later
        else:
            assert len(sent) == 1 and stamped is not None
    # Callers that found a sender busy left their ids to it: fewer threads sent than asked.
    assert len(slow.senders) == len(ids) and len(set(slow.senders)) < len(ids)
    with session_scope(engine) as session:
        assert runs.undispatched(session, older_than_s=0) == [ids[5]]
