"""The one read a sweep's run makes at a judged rung (core/store/sweep_rungs.py rung_gate): go on
without waiting while too few of the sweep's trials have a run at that rung for its pruner to
stop any; the driver's verdict, once there, whatever the count; wait otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.presets import build_spec
from core.store import experiments, sweep_rungs
from core.store import sweeps as sweep_store
from core.store.session import session_scope
from core.store.sweep_tables import Sweep, SweepTrial

SPEC = {"epochs": 1, "train_limit": 900, "validation_records": 100}


def make_sweep(engine: Engine, trials: int, *, pruner: str = "paired", prune_after: int = 3) -> str:
    """A sweep of `trials` trials of two runs (seeds 0 and 1) each, no rung stored yet."""
    with session_scope(engine) as session:
        sweep = Sweep(
            request={"prune_after": prune_after}, base={}, space={}, seeds=[0, 1],
            sampler="random", pruner=pruner, objective="validation_accuracy",
            max_trials=trials, parallel=trials, rungs=3, sampler_seed=0,
        )  # fmt: skip
        session.add(sweep)
        session.flush()
        for number in range(trials):
            runs = []
            for seed in (0, 1):
                spec = build_spec("seed-adam", {**SPEC, "seed": seed})
                experiment, _ = experiments.create_experiment(session, spec)
                runs.append((seed, experiment.id))
            sweep_store.add_trial(session, sweep, number, {}, {}, {}, runs)
        return sweep.id


def run_of(engine: Engine, sweep_id: str, number: int, seed: int = 0) -> str:
    with session_scope(engine) as session:
        runs = sweep_store.runs_with_experiments(session, sweep_id)
        return next(e.id for r, e in runs[number] if r.seed == seed)


def _report(engine: Engine, experiment_id: str, rungs: int) -> None:
    with session_scope(engine) as session:
        for step in (100, 300, 900)[:rungs]:
            figures = {"step": step, "fraction": step / 900, "validation_accuracy": 0.5,
                       "validation_loss": 1.0}  # fmt: skip
            sweep_rungs.save_rung(session, experiment_id, figures)


def _gate(engine: Engine, experiment_id: str, index: int) -> bool | None:
    with session_scope(engine) as session:
        run = sweep_rungs.judged_rungs(session, experiment_id)
        assert run is not None
        return sweep_rungs.rung_gate(session, run, index, experiment_id)


def test_the_count_of_trials_at_the_rung_decides_whether_to_wait(engine: Engine) -> None:
    sweep_id = make_sweep(engine, 4, prune_after=3)
    mine = run_of(engine, sweep_id, 0)
    _report(engine, mine, 1)
    _report(engine, run_of(engine, sweep_id, 1), 2)
    assert _gate(engine, mine, 0) is False  # 2 trials at rung 0 of the 3 `prune_after` asks
    # Trial 2 with one seed there counts: the read errs towards waiting, never the other way.
    _report(engine, run_of(engine, sweep_id, 2, seed=1), 1)
    assert _gate(engine, mine, 0) is None
    # At rung 1 only trials 1 and (now) 0 have a run: no prune possible there yet.
    _report(engine, mine, 2)
    assert _gate(engine, mine, 1) is False
    with session_scope(engine) as session:
        run = sweep_rungs.judged_rungs(session, mine)
    assert run == sweep_rungs.RunOfSweep(sweep_id, 0, 2, 3)


def test_the_verdict_wins_over_the_count(engine: Engine) -> None:
    sweep_id = make_sweep(engine, 2, prune_after=6)
    mine = run_of(engine, sweep_id, 0)
    _report(engine, mine, 2)
    with session_scope(engine) as session:
        trial = session.get(SweepTrial, (sweep_id, 0))
        assert trial is not None
        trial.state, trial.judged = "pruned", 1
        session.add(trial)
    assert _gate(engine, mine, 1) is True  # pruned at rung 0 after it went on: stops now
    other = run_of(engine, sweep_id, 1)
    _report(engine, other, 1)
    with session_scope(engine) as session:
        experiments.request_cancel(session, other)
    assert _gate(engine, other, 0) is True


@pytest.mark.parametrize(("pruner", "least"), [("asha", 2), ("median", 2), ("hyperband", 2)])
def test_optunas_pruners_wait_from_two_trials_at_a_rung(
    engine: Engine, pruner: str, least: int
) -> None:
    sweep_id = make_sweep(engine, 2, pruner=pruner, prune_after=6)
    mine = run_of(engine, sweep_id, 0)
    _report(engine, mine, 1)
    assert _gate(engine, mine, 0) is False
    _report(engine, run_of(engine, sweep_id, 1), 1)
    assert _gate(engine, mine, 0) is None
    with session_scope(engine) as session:
        run = sweep_rungs.judged_rungs(session, mine)
    assert run is not None and run.least == least
