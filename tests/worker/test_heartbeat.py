"""The worker's heartbeat against the real store: it records progress and the device, reads
the cancel flag, and notices when another attempt has taken the experiment over (after which
its loss and checkpoint writes change nothing)."""

from __future__ import annotations

from sqlalchemy import Engine

from core import store
from tests.core.store.helpers import backdate, read, running
from worker.heartbeat import Heartbeat


def test_a_beat_records_progress_and_reads_the_cancel_flag(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    beat = Heartbeat(engine, experiment_id, attempt, 60.0, step=0, total_steps=100)
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
    finally:
        beat.stop()
    with store.session_scope(engine) as session:
        steps, _ = store.read_series(session, experiment_id)
    assert steps.tolist() == [10, 20, 30, 40]


def test_a_superseded_attempt_stops_and_writes_nothing(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    beat = Heartbeat(engine, experiment_id, attempt, 60.0, step=0, total_steps=100)
    beat.start()
    try:
        backdate(engine, experiment_id, heartbeat_s=600)
        with store.session_scope(engine) as session:  # the reaper's twin claims it
            assert store.claim(session, experiment_id, worker="other", stale_after_s=60)
        beat._beat()
        assert beat.lost and beat.should_stop()
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
    beat = Heartbeat(engine, experiment_id, attempt, 0.05, step=5, total_steps=100)
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
