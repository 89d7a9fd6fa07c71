"""The worker's heartbeat against the real store: it records progress and the device, reads
the cancel flag, and notices when another attempt has taken the experiment over (after which
its loss and checkpoint writes change nothing)."""

from __future__ import annotations

from sqlalchemy import Engine

from core import store
from core.store.session import make_engine
from tests.core.store.helpers import backdate, read, running
from worker.heartbeat import Heartbeat, Interruption
from worker.store_link import StoreLink

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
        with store.session_scope(engine) as session:
            store.request_cancel(session, experiment_id)
        beat._beat()
        assert beat.cancel_requested and beat.should_stop() and not beat.lost
        assert beat.interruption is Interruption.cancelled
    finally:
        beat.stop()
    with store.session_scope(engine) as session:
        steps, _ = store.read_series(session, experiment_id)
    assert steps.tolist() == [10, 20, 30, 40]


def test_a_superseded_attempt_stops_and_writes_nothing(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    beat = Heartbeat(_link(engine), experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    try:
        backdate(engine, experiment_id, heartbeat_s=600)
        with store.session_scope(engine) as session:  # the reaper's twin claims it
            assert store.claim(session, experiment_id, worker="other", stale_after_s=60)
        beat._beat()
        assert beat.lost and beat.should_stop() and beat.interruption is Interruption.lost
        beat.write_loss([10], [1.0])
        beat.write_checkpoint(b"not written", 10)
    finally:
        beat.stop()
    with store.session_scope(engine) as session:
        steps, _ = store.read_series(session, experiment_id)
        assert steps.size == 0
        assert store.get_checkpoint(session, experiment_id) is None
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
