"""The driver's narrow read of a sweep's runs (core/store/sweeps.py run_rows): the same runs,
seeds and states as the whole experiment rows give, and the objective out of the metrics."""

from __future__ import annotations

import math

from sqlalchemy import Engine

from core.store import sweeps as sweep_store
from core.store.models import Experiment
from core.store.session import session_scope
from tests.core.store.test_rung_gate import make_sweep, run_of


def test_run_rows_read_what_the_experiment_rows_hold(engine: Engine) -> None:
    sweep_id = make_sweep(engine, 2)
    done, failed = run_of(engine, sweep_id, 0, seed=1), run_of(engine, sweep_id, 1)
    with session_scope(engine) as session:
        for eid, status, metrics, error in (
            (done, "succeeded", {"validation_accuracy": 0.875, "test_accuracy": 0.9}, None),
            (failed, "failed", {"test_accuracy": math.pi}, "out of memory"),
        ):
            experiment = session.get(Experiment, eid)
            assert experiment is not None
            experiment.status, experiment.metrics, experiment.error = status, metrics, error
            session.add(experiment)
    with session_scope(engine) as session:
        narrow = sweep_store.run_rows(session, sweep_id, "validation_accuracy")
        whole = sweep_store.runs_with_experiments(session, sweep_id)
        for number, members in whole.items():
            assert [(r.seed, r.experiment_id) for r, _ in narrow[number]] == [
                (r.seed, r.experiment_id) for r, _ in members
            ]
            assert [(e.id, e.status, e.error) for _, e in narrow[number]] == [
                (e.id, e.status, e.error) for _, e in members
            ]
        objective = {e.id: e.objective for members in narrow.values() for _, e in members}
    assert objective[done] == 0.875
    assert objective[failed] is None  # no such figure in its metrics
    assert sum(v is None for v in objective.values()) == 3
