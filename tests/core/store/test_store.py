"""The store's guarantees under retries and races, on SQLite and Postgres: a point written twice
is stored once, a superseded attempt writes nothing, a claim is won by exactly one caller."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from core.presets import build_spec
from core.store import artifacts, experiments, runs, series, series_points
from core.store.errors import IdempotencyConflict
from core.store.models import Status
from core.store.session import session_scope
from core.store.tables import LOSS
from tests.core.store.helpers import (
    SMALL,
    backdate,
    finish,
    predictions,
    queued,
    running,
    write_loss,
)

T = TypeVar("T")


def _in_session(engine: Engine, work: Callable[[Any], T]) -> T:
    with session_scope(engine) as session:
        return work(session)


def _point_count(engine: Engine, experiment_id: str) -> int:
    query = select(func.count()).select_from(LOSS).where(LOSS.c.experiment_id == experiment_id)
    return int(_in_session(engine, lambda s: s.execute(query).scalar_one()))


def _silence(engine: Engine, experiment_id: str, seconds: float) -> None:
    backdate(engine, experiment_id, heartbeat_s=seconds)


def test_points_written_twice_are_stored_once(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    assert write_loss(engine, experiment_id, attempt, [10, 20, 30], [3.0, 2.0, 1.0]) == 3
    # A redelivered chunk overlapping the stored one adds only the new point.
    assert write_loss(engine, experiment_id, attempt, [20, 30, 40], [9.0, 9.0, 0.5]) == 1
    assert _point_count(engine, experiment_id) == 4
    steps, values = _in_session(engine, lambda s: series.read_series(s, experiment_id))
    assert steps.tolist() == [10, 20, 30, 40]
    assert values.tolist() == [3.0, 2.0, 1.0, 0.5]  # the first write of a step stands


def test_non_finite_losses_round_trip(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    write_loss(engine, experiment_id, attempt, [10, 20, 30], [float("nan"), math.inf, 1.0])
    for phase in ("rows", "packed"):
        if phase == "packed":
            assert finish(engine, experiment_id, attempt)
        _, values = _in_session(engine, lambda s: series.read_series(s, experiment_id))
        assert math.isnan(values[0]) and values[1] == math.inf and values[2] == 1.0, phase


def test_large_chunks_and_packing(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    steps = np.arange(10, 180_001, 10)
    values = np.linspace(2.0, 0.1, steps.size)
    assert write_loss(engine, experiment_id, attempt, steps.tolist(), values.tolist()) == 18_000
    assert finish(engine, experiment_id, attempt, step=180_000)
    got_steps, got_values = _in_session(engine, lambda s: series.read_series(s, experiment_id))
    assert got_steps.dtype == np.int64 and got_values.dtype == np.float64
    assert np.array_equal(got_steps, steps)
    assert np.array_equal(got_values, values.astype(np.float32))  # packed as float32
    tail_steps, _ = _in_session(
        engine, lambda s: series.read_series(s, experiment_id, since_step=179_970)
    )
    assert tail_steps.tolist() == [179_980, 179_990, 180_000]


def test_a_superseded_attempt_writes_nothing(engine: Engine) -> None:
    experiment_id, first = running(engine)
    write_loss(engine, experiment_id, first, [10, 20], [1.0, 0.9])
    _silence(engine, experiment_id, 120)
    second = _in_session(
        engine, lambda s: runs.claim(s, experiment_id, worker="w2", stale_after_s=60)
    )
    assert second == first + 1

    # The first worker wakes up: every write it tries is refused.
    assert write_loss(engine, experiment_id, first, [30], [0.8]) == 0
    owner, _ = _in_session(
        engine, lambda s: runs.heartbeat(s, experiment_id, first, step=30, total_steps=2000)
    )
    assert owner is False
    assert not _in_session(
        engine, lambda s: artifacts.save_checkpoint(s, experiment_id, first, 30, b"old")
    )
    assert not finish(engine, experiment_id, first)

    assert write_loss(engine, experiment_id, second, [30], [0.7]) == 1
    assert finish(engine, experiment_id, second)
    experiment = _in_session(engine, lambda s: experiments.get_experiment(s, experiment_id))
    assert experiment is not None
    assert experiment.status == Status.succeeded and experiment.worker == "w2"
    _, values = _in_session(engine, lambda s: series.read_series(s, experiment_id))
    assert values.tolist() == pytest.approx([1.0, 0.9, 0.7])


def test_claim_is_won_once(engine: Engine) -> None:
    experiment_id = queued(engine)
    claim = lambda s: runs.claim(s, experiment_id, worker="w", stale_after_s=60)  # noqa: E731
    assert _in_session(engine, claim) == 1
    assert _in_session(engine, claim) is None  # running with a fresh heartbeat

    # Many deliveries at once: exactly one gets the experiment.
    racing = queued(engine)
    results: list[int | None] = []
    barrier = threading.Barrier(8)

    def deliver(n: int) -> None:
        barrier.wait()
        with session_scope(engine) as session:
            results.append(runs.claim(session, racing, worker=f"w{n}", stale_after_s=60))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda r: r or 0) == [None] * 7 + [1]


def test_claim_refuses_finished_and_cancelled(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    assert finish(engine, experiment_id, attempt)
    cancelled = queued(engine)
    _in_session(engine, lambda s: experiments.request_cancel(s, cancelled))
    for target in (experiment_id, cancelled):
        with session_scope(engine) as session:
            assert runs.claim(session, target, worker="w", stale_after_s=0) is None


def test_checkpoints_and_truncation_for_resume(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    write_loss(engine, experiment_id, attempt, range(10, 101, 10), [1.0] * 10)
    assert _in_session(
        engine, lambda s: artifacts.save_checkpoint(s, experiment_id, attempt, 50, b"a")
    )
    assert _in_session(
        engine, lambda s: artifacts.save_checkpoint(s, experiment_id, attempt, 60, b"b")
    )
    assert _in_session(engine, lambda s: artifacts.get_checkpoint(s, experiment_id)) == (60, b"b")
    _in_session(engine, lambda s: series_points.truncate_loss_after(s, experiment_id, 60))
    steps, _ = _in_session(engine, lambda s: series.read_series(s, experiment_id))
    assert steps.tolist() == [10, 20, 30, 40, 50, 60]


def test_reaper_operations(engine: Engine) -> None:
    silent, attempt = running(engine)
    alive, _ = running(engine)
    _silence(engine, silent, 300)
    stale = _in_session(engine, lambda s: runs.stale_running(s, stale_after_s=60))
    assert [e.id for e in stale] == [silent]

    assert not _in_session(engine, lambda s: runs.requeue(s, silent, expected_attempt=attempt + 1))
    assert not _in_session(
        engine, lambda s: runs.requeue(s, alive, expected_attempt=1, stale_after_s=60)
    )
    assert _in_session(engine, lambda s: runs.requeue(s, silent, expected_attempt=attempt))
    requeued = _in_session(engine, lambda s: experiments.get_experiment(s, silent))
    assert requeued is not None and requeued.status == "queued" and requeued.attempt == attempt
    again = _in_session(engine, lambda s: runs.claim(s, silent, worker="w", stale_after_s=60))
    assert again == attempt + 1

    # A cancel asked of a worker that then died is not requeued.
    _in_session(engine, lambda s: experiments.request_cancel(s, alive))
    _silence(engine, alive, 300)
    assert not _in_session(engine, lambda s: runs.requeue(s, alive, expected_attempt=1))

    assert _in_session(engine, lambda s: runs.fail(s, silent, "gave up"))
    assert not _in_session(engine, lambda s: runs.fail(s, silent, "twice"))
    failed = _in_session(engine, lambda s: experiments.get_experiment(s, silent))
    assert failed is not None and failed.status == "failed" and failed.error == "gave up"

    # A queued experiment is sent by the reaper until the broker has taken its message.
    waiting = queued(engine)
    assert _in_session(engine, lambda s: runs.undispatched(s, older_than_s=0)) == [waiting]
    assert _in_session(engine, lambda s: runs.undispatched(s, older_than_s=3600)) == []
    _in_session(engine, lambda s: runs.mark_dispatched(s, waiting))
    assert _in_session(engine, lambda s: runs.undispatched(s, older_than_s=0)) == []


def test_idempotent_create_under_concurrency(engine: Engine) -> None:
    spec = build_spec("seed-adam", SMALL)
    ids: list[str] = []
    barrier = threading.Barrier(6)

    def submit() -> None:
        barrier.wait()
        with session_scope(engine) as session:
            experiment, _ = experiments.create_experiment(session, spec, idempotency_key="same")
            ids.append(experiment.id)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    with pytest.raises(IdempotencyConflict):
        _in_session(
            engine,
            lambda s: experiments.create_experiment(
                s, build_spec("seed-bce", SMALL), idempotency_key="same"
            ),
        )


def test_predictions_blob_round_trip(engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    arrays = predictions(10_000)
    assert finish(engine, experiment_id, attempt, with_predictions=arrays)
    blob = _in_session(engine, lambda s: artifacts.read_predictions(s, experiment_id))
    assert blob is not None and blob.records == 10_000
    assert blob.outputs.dtype == np.float32 and blob.outputs.shape == (10_000, 10)
    assert np.array_equal(blob.outputs, arrays["outputs"])
    assert np.array_equal(blob.labels, arrays["labels"])
    assert np.array_equal(blob.predicted, arrays["predicted"])
    other, other_attempt = running(engine)
    with pytest.raises(ValueError, match="outputs"):
        bad = {"outputs": np.zeros((3, 9)), "labels": np.zeros(3), "predicted": np.zeros(3)}
        finish(engine, other, other_attempt, with_predictions=bad)
