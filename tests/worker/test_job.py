"""One delivery of an experiment, end to end in this process against the real store: claim,
train (the real engine, a few hundred steps on MNIST), write the outcome; a duplicate delivery
finds nothing to do; a spec the engine can't run ends `failed` with its reason; a run that
was lost resumes from its checkpoint and ends with an exact series; a shutting-down worker
hands its run back; the store's faults never fail a run, except a result it refuses for good."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from core.presets import build_spec
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import artifacts, experiments, runs, series, series_points
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine, session_scope
from tests.conftest import make_settings
from tests.core.store.helpers import backdate, read
from tests.worker.test_heartbeat import UNREACHABLE_URL
from worker.claiming import claim_run
from worker.fused_job import run_delivery
from worker.job import NOT_TAKEN, start_heartbeat, train
from worker.settling import settle
from worker.store_link import StoreLink

TINY = {"epochs": 1, "train_limit": 300, "test_limit": 100, "device": "cpu"}


@pytest.fixture
def worker_settings(settings: Settings, mnist_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": mnist_dir,
            "allow_download": False,
            "torch_threads": 1,
            "flush_interval_s": 0.01,
            "checkpoint_interval_s": 0.01,
        }
    )


def _submit(engine: Engine, **overrides: object) -> str:
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(
            session, build_spec("seed-adam", TINY | overrides)
        )
        return experiment.id


def _series(engine: Engine, experiment_id: str) -> tuple[list[int], list[float]]:
    with session_scope(engine) as session:
        steps, values = series.read_series(session, experiment_id)
    return steps.tolist(), values.tolist()


def test_a_delivery_trains_and_stores_the_outcome(
    engine: Engine, worker_settings: Settings
) -> None:
    experiment_id = _submit(engine)
    assert run_delivery(experiment_id, engine, worker_settings) == "succeeded"
    done = read(engine, experiment_id)
    assert done.status == "succeeded" and done.attempt == 1 and done.step == 300
    assert done.metrics is not None and 0.0 <= done.metrics["test_accuracy"] <= 1.0
    assert done.device == "cpu" and done.fingerprint is not None
    # Where the attempt's time went, for the benchmark: these keys, in seconds, none negative.
    phases = done.metrics["phases"]
    assert set(phases) == {"claim_s", "load_s", "train_s", "evaluate_s", "write_s", "held_s"}
    assert all(isinstance(v, float) and v >= 0 for v in phases.values()), phases
    assert phases["train_s"] > 0 and phases["write_s"] > 0
    assert phases["held_s"] == 0.0  # a run of no sweep never waits for a verdict
    steps, _ = _series(engine, experiment_id)
    assert steps == list(range(10, 301, 10))
    with session_scope(engine) as session:
        blob = artifacts.read_predictions(session, experiment_id)
    assert blob is not None and blob.records == 100
    # A duplicate delivery (a redelivered message) finds nothing to claim.
    assert run_delivery(experiment_id, engine, worker_settings).startswith("skipped")
    assert read(engine, experiment_id).attempt == 1


def test_a_spec_the_engine_cannot_run_fails_with_its_reason(
    engine: Engine, worker_settings: Settings, tmp_path: Path
) -> None:
    experiment_id = _submit(engine)
    no_data = worker_settings.model_copy(update={"data_dir": tmp_path / "empty"})
    assert run_delivery(experiment_id, engine, no_data) == "failed"
    failed = read(engine, experiment_id)
    assert failed.status == "failed" and "DatasetUnavailableError" in str(failed.error)


def test_a_stored_spec_that_no_longer_validates_fails_with_its_reason(
    engine: Engine, worker_settings: Settings
) -> None:
    experiment_id = _submit(engine)
    with session_scope(engine) as session:
        experiment = experiments.require_experiment(session, experiment_id)
        experiment.spec = {**experiment.spec, "epochs": -1}
        session.add(experiment)
    assert run_delivery(experiment_id, engine, worker_settings) == "failed"
    failed = read(engine, experiment_id)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.startswith("ValidationError:") and "epochs" in failed.error


def test_a_lost_run_resumes_from_its_checkpoint_with_an_exact_series(
    engine: Engine, worker_settings: Settings
) -> None:
    reference_id = _submit(engine, seed=3)
    assert run_delivery(reference_id, engine, worker_settings) == "succeeded"
    expected_steps, expected_values = _series(engine, reference_id)
    checkpoint = _checkpoint_at(engine, reference_id, worker_settings, step=150)

    # A first attempt that died after its checkpoint at step 150, having written points up
    # to step 200 (made up here, to tell them apart), the experiment left `running`.
    lost_id = _submit(engine, seed=3)
    with session_scope(engine) as session:
        attempt = runs.claim(session, lost_id, worker="dead:1", stale_after_s=60)
        assert attempt == 1
        artifacts.save_checkpoint(session, lost_id, attempt, 150, checkpoint)
        series_points.append_loss(session, lost_id, attempt, expected_steps[:20], [9.0] * 20)
    backdate(engine, lost_id, heartbeat_s=worker_settings.heartbeat_timeout_s + 5)

    assert run_delivery(lost_id, engine, worker_settings) == "succeeded"
    assert read(engine, lost_id).attempt == 2
    steps, values = _series(engine, lost_id)
    assert steps == expected_steps  # every point once, none missing
    # Up to the checkpoint the first attempt's points stand; after it, recomputed exactly.
    assert values[:15] == [9.0] * 15
    assert values[15:] == expected_values[15:]


def _checkpoint_at(engine: Engine, experiment_id: str, settings: Settings, *, step: int) -> bytes:
    """The checkpoint an uninterrupted run of the same spec takes at `step`."""
    from worker.engine import RunCallbacks, run_training

    with session_scope(engine) as session:
        spec = ExperimentSpec.model_validate(
            experiments.require_experiment(session, experiment_id).spec
        )
    reached = [0]
    callbacks = RunCallbacks(
        on_progress=lambda done, _total: reached.__setitem__(0, done),
        should_stop=lambda: reached[0] >= step,
    )
    # Callbacks after every step, so the run stops at exactly `step`.
    result = run_training(
        spec, data_dir=settings.data_dir, callbacks=callbacks, threads=1, flush_interval_s=0.0
    )
    assert result.steps == step
    return result.checkpoint


def test_a_worker_shutting_down_takes_no_new_run(engine: Engine, worker_settings: Settings) -> None:
    experiment_id = _submit(engine)
    outcome = run_delivery(experiment_id, engine, worker_settings, shutting_down=lambda: True)
    assert outcome == NOT_TAKEN
    untouched = read(engine, experiment_id)
    assert (untouched.status, untouched.attempt) == ("queued", 0)


def test_a_run_handed_back_at_shutdown_resumes_exactly(
    engine: Engine, worker_settings: Settings
) -> None:
    """A worker told to shut down stops at the next flush, saves its checkpoint there and
    puts the experiment back in the queue; the next attempt resumes and ends exact."""
    longer = {"train_limit": 3000}
    reference_id = _submit(engine, seed=5, **longer)
    assert run_delivery(reference_id, engine, worker_settings) == "succeeded"
    expected_steps, expected_values = _series(engine, reference_id)

    experiment_id = _submit(engine, seed=5, **longer)
    asked = [0]

    def shutting_down() -> bool:  # true from the 20th question on: mid-run
        asked[0] += 1
        return asked[0] >= 20

    outcome = run_delivery(experiment_id, engine, worker_settings, shutting_down=shutting_down)
    assert outcome.startswith("handed back at step"), outcome
    stopped_at = int(outcome.rsplit(" ", 1)[1])
    assert 0 < stopped_at < 3000
    handed = read(engine, experiment_id)
    assert (handed.status, handed.attempt, handed.dispatched_at) == ("queued", 1, None)
    assert handed.handbacks == 1  # not an attempt lost: TRAINLAB_MAX_ATTEMPTS leaves it be
    with session_scope(engine) as session:
        checkpoint = artifacts.get_checkpoint(session, experiment_id)
    assert checkpoint is not None and checkpoint[0] == stopped_at
    steps, _ = _series(engine, experiment_id)
    assert steps == list(range(10, stopped_at - stopped_at % 10 + 1, 10))

    assert run_delivery(experiment_id, engine, worker_settings) == "succeeded"
    assert read(engine, experiment_id).attempt == 2
    assert _series(engine, experiment_id) == (expected_steps, expected_values)


def test_a_result_the_store_refuses_fails_the_run_at_once(tmp_path: Path, mnist_dir: Path) -> None:
    """SQLite refuses a blob over its length limit ('string or blob too big', a DataError)
    now and forever: the run ends `failed` with that reason at its first attempt."""
    url = f"sqlite:///{tmp_path / 'small.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _small_blobs(dbapi_connection: Any, _record: Any) -> None:
        # Loss points and the experiment row fit; the final checkpoint (~2 MB) does not.
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200_000)

    settings = make_settings(
        database_url=url,
        data_dir=mnist_dir,
        allow_download=False,
        torch_threads=1,
        flush_interval_s=0.01,
        checkpoint_interval_s=3600,
    )
    try:
        experiment_id = _submit(engine)
        assert run_delivery(experiment_id, engine, settings) == "failed"
        failed = read(engine, experiment_id)
        assert failed.status == "failed" and failed.attempt == 1
        assert "refused" in str(failed.error) and "too big" in str(failed.error)
        # Not tried again: a redelivery finds nothing to claim.
        assert run_delivery(experiment_id, engine, settings).startswith("skipped")
    finally:
        engine.dispose()


def test_a_store_that_stays_away_leaves_the_run_to_the_reaper(
    engine: Engine, worker_settings: Settings
) -> None:
    """Past the patience the job stops writing and leaves the run `running` (never `failed`
    for the store's fault); once its heartbeat is stale a new attempt resumes it."""
    experiment_id = _submit(engine, seed=4)
    claimed = claim_run(StoreLink(engine, patience_s=5), experiment_id, worker_settings)
    assert claimed is not None
    gone = StoreLink(make_engine(UNREACHABLE_URL), patience_s=0.3)
    heartbeat = start_heartbeat(gone, claimed, worker_settings)
    try:
        result = train(claimed, heartbeat, worker_settings)
        outcome = settle(gone, claimed, heartbeat, result, worker_settings)
    finally:
        heartbeat.stop()
    assert outcome.startswith("left to the reaper"), outcome
    left = read(engine, experiment_id)
    assert (left.status, left.attempt, left.error) == ("running", 1, None)

    backdate(engine, experiment_id, heartbeat_s=worker_settings.heartbeat_timeout_s + 5)
    assert run_delivery(experiment_id, engine, worker_settings) == "succeeded"
    assert read(engine, experiment_id).attempt == 2
