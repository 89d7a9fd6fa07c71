"""The sweep driver's wake (api/background/sweeps.py): while a sweep is active it makes its
pass as soon as a rung is stored or a run ends (a sweep's run waits at a rung for the
verdict), not only on its interval, and with nothing new it makes none before the interval."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from api.background.sweeps import SweepDriver
from core.settings import Settings
from core.store import sweep_rungs
from core.store import sweeps as sweep_store
from tests.api.app_client import AppClient
from tests.api.sweep_runs import Sent

HOUR = 3600.0
BODY = {"preset": "seed-baseline", "overrides": {"train_limit": 500, "test_limit": 100,
        "epochs": 1, "batch_size": 10}, "validation_records": 200, "seeds": 2,
        "space": {"lr": {"type": "choice", "values": [0.5, 0.0001]}}, "sampler": "grid",
        "max_trials": 2, "parallel": 2}  # fmt: skip


def _first_run(engine: Engine, sweep_id: str) -> str:
    with Session(engine) as session:
        runs = sweep_store.runs_with_experiments(session, sweep_id)
    return runs[0][0][1].id


def test_the_driver_passes_when_a_rung_is_stored_and_not_before(
    client: AppClient, engine: Engine, settings: Settings
) -> None:
    created = client.post("/sweeps", json=BODY)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    sent = Sent()
    driver = SweepDriver(engine, sent, settings)  # type: ignore[arg-type]
    assert driver.pass_when_due(HOUR) == 1  # the first pass: the sweep's trials asked
    assert len(sent.ids) == 4
    # Nothing new, an hour's interval: no pass (a pass would show in the lease's renewal).
    with Session(engine) as session:
        leased = sweep_store.require_sweep(session, sweep_id).lease_until
    assert driver.pass_when_due(HOUR) == 0
    with Session(engine) as session:
        assert sweep_store.require_sweep(session, sweep_id).lease_until == leased
    # A rung stored: the next look makes a pass at once.
    with Session(engine) as session:
        figures = {"step": 6, "fraction": 0.12, "validation_accuracy": 0.5,
                   "validation_loss": 0.5}  # fmt: skip
        sweep_rungs.save_rung(session, _first_run(engine, sweep_id), figures)
        session.commit()
    assert driver.pass_when_due(HOUR) == 1
    assert driver.pass_when_due(HOUR) == 0
