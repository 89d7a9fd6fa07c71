"""The worker's heartbeat against the real store: it records progress and the device, reads
the cancel flag, and notices when another attempt has taken the experiment over (after which
its loss and checkpoint writes change nothing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from core.store import artifacts, experiments, runs, series
from core.store.session import make_engine, session_scope
from tests.core.store.helpers import backdate, read, running
from worker.heartbeat import Heartbeat, Interruption
from worker.store_link import StoreLink

T = TypeVar("T")

# Nothing listens on port 1: every connection is refused at once (a real OperationalError).
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"


def _link(engine: Engine) -> StoreLink:
    return StoreLink(engine, patience_s=5.0)


def test_a_beat_records_progress_and_reads_the_cancel_flag(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    beat = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.device = "cpu"
    beat.start()
    try:
        beat.set_progress(40, 100)
        beat.write_loss([10, 20, 30, 40], [1.0, 0.9, 0.8, 0.7])
        beat._beat()
        stored = read(engine, experiment_id)
        assert (stored.step, stored.total_steps, stored.device) == (40, 100, "cpu")
        assert not beat.should_stop()
        with session_scope(engine) as session:
            experiments.request_cancel(session, experiment_id)
        beat._beat()
        assert beat.cancel_requested and beat.should_stop() and not beat.lost
        assert beat.interruption is Interruption.cancelled
    finally:
        beat.stop()
    with session_scope(engine) as session:
        steps, _ = series.read_series(session, experiment_id)
    assert steps.tolist() == [10, 20, 30, 40]


def test_a_first_attempt_starts_without_a_beat_and_a_resumed_one_with_one(
    engine: Engine,
) -> None:
    """A first attempt's claim has just beaten for it: its start writes nothing (a round trip
    less per run); a resumed attempt's start shows at once the step it resumes from."""
    experiment_id, attempt = running(engine)
    backdate(engine, experiment_id, heartbeat_s=600)
    before = read(engine, experiment_id).heartbeat_at
    quiet = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=0, total_steps=100)
    quiet.start(beat=False)
    quiet.stop()
    assert read(engine, experiment_id).heartbeat_at == before
    resumed = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=30, total_steps=100)
    resumed.start()
    resumed.stop()
    stored = read(engine, experiment_id)
    assert stored.heartbeat_at != before and stored.step == 30


def test_a_superseded_attempt_stops_and_writes_nothing(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    beat = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    try:
        backdate(engine, experiment_id, heartbeat_s=600)
        with session_scope(engine) as session:  # the reaper's twin claims it
            assert runs.claim(session, experiment_id, worker="other", stale_after_s=60)
        beat._beat()
        assert beat.lost and beat.should_stop() and beat.interruption is Interruption.lost
        beat.write_loss([10], [1.0])
        beat.write_checkpoint(b"not written", 10)
    finally:
        beat.stop()
    with session_scope(engine) as session:
        steps, _ = series.read_series(session, experiment_id)
        assert steps.size == 0
        assert artifacts.get_checkpoint(session, experiment_id) is None
    assert read(engine, experiment_id).worker == "other"


def test_the_beat_thread_keeps_beating(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    backdate(engine, experiment_id, heartbeat_s=600)
    beat = Heartbeat(_link(engine), experiment_id, attempt, 0.05, step=5, total_steps=100)
    beat.start()
    try:
        beat.set_progress(7, 100)
        deadline_beats = 0
        while read(engine, experiment_id).step != 7 and deadline_beats < 100:
            deadline_beats += 1
            beat._done.wait(0.05)
    finally:
        beat.stop()
    assert read(engine, experiment_id).step == 7


def test_a_shutting_down_worker_asks_the_run_to_stop(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    shutting_down = [False]
    beat = Heartbeat(
        _link(engine),
        experiment_id,
        attempt,
        60.0,
        step=0,
        total_steps=100,
        shutting_down=lambda: shutting_down[0],
    )
    assert not beat.should_stop()
    shutting_down[0] = True
    assert beat.should_stop() and beat.interruption is Interruption.handed_back


def test_an_unreachable_store_stops_the_run_without_losing_ownership(engine: Engine) -> None:
    """Past the patience a loss write gives up: the run is asked to stop (the job leaves it to
    the reaper) and nothing more is written; the beat's failures don't mark it lost."""
    experiment_id, attempt = running(engine)
    gone = StoreLink(make_engine(UNREACHABLE_URL), patience_s=0.3)
    beat = Heartbeat(gone, experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()  # the first beat fails, and is only logged
    try:
        beat.write_loss([10], [1.0])
        beat.drain()  # the store thread writes it, and gives up past the patience
        assert beat.interruption is Interruption.store_gone and not beat.lost
        assert "store unreachable" in str(beat.store_error)
    finally:
        beat.stop()
    assert read(engine, experiment_id).status == "running"


class GatedLink(StoreLink):
    """A StoreLink whose writes wait for `gate` (a slow or absent store), counted."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, patience_s=5.0)
        self.gate = threading.Event()
        self.writes: list[str] = []

    def run(self, what: str, write: Callable[[Session], T]) -> T:
        self.gate.wait()
        self.writes.append(what)
        return super().run(what, write)


def _series(engine: Engine, experiment_id: str) -> tuple[list[int], list[float]]:
    with session_scope(engine) as session:
        steps, values = series.read_series(session, experiment_id)
    return steps.tolist(), values.tolist()


def test_queued_points_are_written_exactly_in_order_and_batched(engine: Engine) -> None:
    """Flushes that wait behind a slow write go in together, every point once; a twin
    delivery writing the same points again changes nothing."""
    experiment_id, attempt = running(engine)
    link = GatedLink(engine)
    beat = Heartbeat(link, experiment_id, attempt, 60.0, step=0, total_steps=1000)
    beat.start()
    try:
        for k in range(1, 21):
            beat.write_loss([10 * k], [1.0 / k])
        beat.write_checkpoint(b"at 200", 200)
        beat.write_loss([210, 220], [0.04, 0.03])
        beat.write_loss([210, 220], [9.0, 9.0])  # written already: ignored
        link.gate.set()
        beat.drain()
        assert beat.interruption is None
    finally:
        beat.stop()
    steps, values = _series(engine, experiment_id)
    assert steps == list(range(10, 221, 10))
    assert values[:20] == [1.0 / k for k in range(1, 21)] and values[20:] == [0.04, 0.03]
    # 20 flushes in one transaction, the checkpoint, then the last two flushes in one.
    assert len(link.writes) == 3 and link.writes[1] == "the checkpoint at step 200"
    with session_scope(engine) as session:
        assert artifacts.get_checkpoint(session, experiment_id) == (200, b"at 200")


def test_drain_waits_for_queued_writes(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    link = GatedLink(engine)
    beat = Heartbeat(link, experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    drained = threading.Event()
    try:
        beat.write_loss([10], [1.0])
        drainer = threading.Thread(target=lambda: (beat.drain(), drained.set()))
        drainer.start()
        assert not drained.wait(0.3)  # the outcome would wait here
        link.gate.set()
        assert drained.wait(10)
        assert _series(engine, experiment_id)[0] == [10]
    finally:
        link.gate.set()
        beat.stop()


def test_a_store_that_does_not_answer_blocks_training_instead_of_queueing_more(
    engine: Engine,
) -> None:
    experiment_id, attempt = running(engine)
    link = GatedLink(engine)
    beat = Heartbeat(link, experiment_id, attempt, 60.0, step=0, total_steps=1000, capacity=2)
    beat.start()
    trainer = threading.Thread(
        target=lambda: [beat.write_loss([10 * k], [float(k)]) for k in range(1, 11)]
    )
    try:
        trainer.start()
        time.sleep(0.3)
        assert trainer.is_alive()  # blocked on the full queue: the run pauses
        link.gate.set()
        trainer.join(timeout=10)
        assert not trainer.is_alive()
        beat.drain()
    finally:
        link.gate.set()
        beat.stop()
    assert _series(engine, experiment_id)[0] == list(range(10, 101, 10))


def test_a_refused_write_stops_the_run_and_drops_what_follows(engine: Engine) -> None:
    """A loss value the store refuses for good (a step beyond its integer column) makes
    should_stop true, and nothing queued after it is written."""
    experiment_id, attempt = running(engine)
    beat = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    try:
        beat.write_loss([10], [1.0])
        beat.write_loss([2**70], [0.9])
        beat.write_loss([30], [0.8])
        beat.drain()
        assert beat.should_stop() and beat.interruption is Interruption.refused
        assert "refused" in str(beat.store_error)
        beat.write_checkpoint(b"never", 40)
        beat.drain()
    finally:
        beat.stop()
    assert _series(engine, experiment_id)[0] == [10]
    with session_scope(engine) as session:
        assert artifacts.get_checkpoint(session, experiment_id) is None


def test_points_queued_before_a_takeover_are_not_written(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    link = GatedLink(engine)
    beat = Heartbeat(link, experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    try:
        beat.write_loss([10], [1.0])
        beat.write_checkpoint(b"stale", 10)
        backdate(engine, experiment_id, heartbeat_s=600)
        with session_scope(engine) as session:
            assert runs.claim(session, experiment_id, worker="other", stale_after_s=60)
        link.gate.set()
        beat.drain()
        assert beat.lost and beat.interruption is Interruption.lost
    finally:
        beat.stop()
    assert _series(engine, experiment_id)[0] == []
    with session_scope(engine) as session:
        assert artifacts.get_checkpoint(session, experiment_id) is None
