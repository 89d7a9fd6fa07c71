"""The store runs out of space while a run trains (SQLite's `max_page_count`, what a full
disk or a file-size limit gives: "database or disk is full"): the run pauses, neither failed
nor losing a point, and once there is room again it goes on and ends `succeeded` at its first
attempt with every point exactly as an uninterrupted run of the same spec and seed has it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from core.store import experiments, series
from core.store.faults import is_disk_full
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine, session_scope
from tests.conftest import make_settings
from tests.worker.twin_runs import trained_twin
from worker.fused_job import run_delivery

SPEC = {"epochs": 1, "train_limit": 3000, "test_limit": 200, "device": "cpu", "seed": 12}
NO_LIMIT = 1_073_741_823  # SQLite's default max_page_count


def _series(engine: Engine, experiment_id: str) -> tuple[list[int], list[float]]:
    with session_scope(engine) as session:
        steps, values = series.read_series(session, experiment_id)
    return steps.tolist(), values.tolist()


def test_a_full_store_pauses_the_run_and_it_ends_exact(tmp_path: Path, mnist_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    pages = [NO_LIMIT]
    refusals: list[float] = []

    @event.listens_for(engine, "checkout")
    def _room(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages[0]}")

    @event.listens_for(engine, "handle_error")
    def _seen(context: Any) -> None:
        if is_disk_full(context.sqlalchemy_exception or context.original_exception):
            refusals.append(time.monotonic())

    settings = make_settings(
        data_dir=mnist_dir,
        allow_download=False,
        torch_threads=1,
        flush_interval_s=0.01,
        checkpoint_interval_s=0.5,
        max_fused_runs=1,
        store_patience_s=120,
    )
    try:
        reference, victim = trained_twin(engine, settings, SPEC)

        with engine.connect() as connection:
            in_use = int(connection.execute(text("PRAGMA page_count")).scalar_one())
        pages[0] = in_use + 8  # room for a few flushes, not for a checkpoint

        def space_returns() -> None:
            while not refusals:
                time.sleep(0.05)
            time.sleep(2.0)  # the run stays paused meanwhile
            pages[0] = NO_LIMIT

        freer = threading.Thread(target=space_returns)
        freer.start()
        outcome = run_delivery(victim, engine, settings)
        freer.join(timeout=60)
        assert refusals, "the store never ran out of space"
        assert outcome == "succeeded"
        with session_scope(engine) as session:
            done = experiments.require_experiment(session, victim)
        assert (done.status, done.attempt, done.error) == ("succeeded", 1, None)
        assert _series(engine, victim) == _series(engine, reference)
        print(f"store full: {len(refusals)} writes refused over {refusals[-1] - refusals[0]:.1f} s")
    finally:
        engine.dispose()
