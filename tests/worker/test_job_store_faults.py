"""The issue's worst case, in this process against the real PostgreSQL server: one database
connection terminated in the middle of a loss-point INSERT. The write is made again on a new
connection, the run goes on, and it ends `succeeded` at its first attempt with every point
exactly as an uninterrupted run of the same spec and seed has it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.store import experiments, series
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine, session_scope
from tests.conftest import (
    ADMIN_URL,
    create_schema,
    drop_schema,
    make_settings,
    postgres_schema_url,
    require_postgres,
)
from tests.integration.services import kill_insert_into
from tests.worker.twin_runs import trained_twin
from worker.fused_job import run_delivery

APP = "trainlab-job-under-test"
SPEC = {"epochs": 1, "train_limit": 3000, "test_limit": 200, "device": "cpu", "seed": 11}


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = create_schema("trainlab_faults")
    upgrade_to_head(postgres_schema_url(name))
    yield name
    drop_schema(name)


def _series(engine: Engine, experiment_id: str) -> tuple[list[int], list[float]]:
    with session_scope(engine) as session:
        steps, values = series.read_series(session, experiment_id)
    return steps.tolist(), values.tolist()


def test_one_connection_killed_mid_insert_costs_nothing(schema: str, mnist_dir: Path) -> None:
    engine = make_engine(f"{postgres_schema_url(schema)}&application_name={APP}")
    settings = make_settings(
        data_dir=mnist_dir,
        allow_download=False,
        torch_threads=1,
        flush_interval_s=0.01,
        checkpoint_interval_s=0.5,
        max_fused_runs=1,  # the two identical runs train one after the other, not fused
    )
    try:
        reference, victim = trained_twin(engine, settings, SPEC)

        killed: list[int] = []
        held = threading.Event()
        killer = threading.Thread(
            target=lambda: killed.append(
                kill_insert_into(
                    ADMIN_URL, f'"{schema}".loss_points', application_name=APP, held=held
                )
            )
        )
        killer.start()
        # The table is held before the run starts: its first INSERT waits, and is the one
        # killed (a first attempt deletes nothing from it first).
        assert held.wait(timeout=30), "the loss table was never held"
        outcome = run_delivery(victim, engine, settings)
        killer.join(timeout=60)
        assert killed, "the INSERT was never caught in flight"
        assert outcome == "succeeded"
        with session_scope(engine) as session:
            done = experiments.require_experiment(session, victim)
        assert (done.status, done.attempt, done.error) == ("succeeded", 1, None)
        assert _series(engine, victim) == _series(engine, reference)
    finally:
        engine.dispose()
