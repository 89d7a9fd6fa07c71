"""The Celery task's chain (worker/tasks.py chain_runs): after a short delivery the same task
claims and trains the next queued runs itself, fairest first, for up to chain_runs_s, rather
than a broker round trip each; it stops when nothing is queued, and never chains at 0."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.presets import build_spec
from core.settings import Settings
from core.store import experiments
from core.store.session import session_scope
from tests.core.store.helpers import read
from worker.fused_job import run_delivery
from worker.tasks import ProcessContext, chain_runs

# Different seeds of nothing fusable: max_fused_runs 1, so each run is its own delivery.
TINY = {"epochs": 1, "train_limit": 100, "test_limit": 50, "batch_size": 10, "device": "cpu"}


@pytest.fixture
def context(settings: Settings, engine: Engine, mnist_dir: Path) -> ProcessContext:
    tuned = settings.model_copy(
        update={
            "data_dir": mnist_dir,
            "allow_download": False,
            "torch_threads": 1,
            "max_fused_runs": 1,
        }
    )
    return ProcessContext(tuned, engine)


def _submit(engine: Engine, count: int) -> list[str]:
    ids = []
    with session_scope(engine) as session:
        for seed in range(count):
            spec = build_spec("seed-adam", {**TINY, "seed": seed})
            ids.append(experiments.create_experiment(session, spec)[0].id)
    return ids


def test_a_short_delivery_chains_the_queued_runs(context: ProcessContext) -> None:
    ids = _submit(context.engine, 4)
    started = time.monotonic()
    first = run_delivery(ids[0], context.engine, context.settings)
    assert first == "succeeded"
    chain_runs(ids[0], first, started, context)
    runs = [read(context.engine, run_id) for run_id in ids]
    assert [(r.status, r.attempt) for r in runs] == [("succeeded", 1)] * 4
    # Each run's own message then finds it taken: nothing to do, nothing run twice.
    assert run_delivery(ids[3], context.engine, context.settings).startswith("skipped")


def test_no_chain_at_zero_or_after_a_delivery_that_ran_nothing(context: ProcessContext) -> None:
    ids = _submit(context.engine, 2)
    off = ProcessContext(context.settings.model_copy(update={"chain_runs_s": 0.0}), context.engine)
    started = time.monotonic()
    chain_runs(ids[0], run_delivery(ids[0], off.engine, off.settings), started, off)
    assert [read(off.engine, run_id).status for run_id in ids] == ["succeeded", "queued"]
    chain_runs(ids[0], "skipped: nothing to run", time.monotonic(), context)
    assert read(context.engine, ids[1]).status == "queued"
    # Over the budget already (a long first delivery): no chain either.
    chain_runs(ids[0], "succeeded", time.monotonic() - 60.0, context)
    assert read(context.engine, ids[1]).status == "queued"
