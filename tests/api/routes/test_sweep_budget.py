"""GET /sweeps/{id}'s budget prices each run from what was stored when it was made (its cost
model estimate and planned length): the same figures as pricing every stored spec again, and
a run stored without them (made before runs were priced) is priced from its spec."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from api.background.sweeps import SweepDriver
from core.cost import estimate
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments, sweep_reads
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS
from tests.api.app_client import AppClient
from tests.api.sweep_runs import Sent, finish_runs

SPACE = {"lr": {"type": "choice", "values": [0.5, 0.0001]}}
BASE = {"preset": "seed-baseline", "overrides": {"train_limit": 500, "test_limit": 100,
        "epochs": 1, "batch_size": 10}, "validation_records": 200}  # fmt: skip


def _repriced(engine: Engine, sweep_id: str) -> tuple[int, float, int]:
    """(steps if full, CPU-seconds if full, steps used), every stored spec validated and
    priced again: what the view answered before prices were read from the store."""
    with Session(engine) as session:
        runs = [r for m in sweep_reads.runs(session, sweep_id).values() for r in m]
        specs = experiments.specs_of(session, [r.experiment_id for r in runs])
    steps = cpu = 0.0
    for run in runs:
        spec = ExperimentSpec.model_validate(specs[run.experiment_id])
        steps += run.total_steps or spec.total_steps
        cpu += estimate(spec).cpu_seconds
    return int(steps), cpu, sum(r.step for r in runs)


def test_the_budget_is_the_cost_models_price_stored_or_not(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    created = client.post(
        "/sweeps",
        json={**BASE, "space": SPACE, "sampler": "grid", "pruner": "none", "max_trials": 2,
              "parallel": 2, "seeds": 2},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    driver = SweepDriver(engine, Sent(), settings)  # type: ignore[arg-type]
    driver.drive(sweep_id)
    url = f"/sweeps/{sweep_id}"
    queued = client.get(url).json()["budget"]
    steps, cpu, used = _repriced(engine, sweep_id)
    assert queued["trials"] == 2 and queued["steps"] == used == 0
    assert queued["steps_if_full"] == steps > 0
    assert queued["cpu_seconds_if_full"] == pytest.approx(cpu, abs=1e-3) and cpu > 0
    # Unpriced rows, as made before prices were stored: priced from their specs instead.
    with session_scope(engine) as session:
        session.execute(update(EXPERIMENTS).values(cost=0.0, planned_steps=0))
    assert client.get(url).json()["budget"] == queued
    finish_runs(engine, sweep_id, {0.5: 0.8, 0.0001: 0.3})
    driver.drive(sweep_id)
    view = client.get(url).json()
    steps, cpu, used = _repriced(engine, sweep_id)
    assert view["budget"]["steps"] == used == steps and view["budget"]["steps_if_full"] == steps
    assert view["budget"]["cpu_seconds"] == pytest.approx(cpu, abs=1e-3)
    assert view["budget"]["cpu_seconds_if_full"] == pytest.approx(cpu, abs=1e-3)
    bands = {t["params"]["lr"]: t["value_interval"] for t in view["trials"]}
    assert bands[0.5]["mean"] == pytest.approx(0.805) and bands[0.0001]["n"] == 2
