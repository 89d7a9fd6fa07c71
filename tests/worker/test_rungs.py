"""A sweep's run holds at a judged rung for its trial's verdict (worker/rungs.py), through a
real delivery on the real store: pruned there, it stops at that rung's step; judged to go on,
it trains to its end; with no verdict in time it goes on after the wait; a run of no sweep,
and the last rung of a sweep's run, never wait. The driver (api/) is not for worker tests: a
thread writes its verdict into the store as the driver's pass does (state, judged, cancel)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.presets import build_spec
from core.settings import Settings
from core.store import experiments, sweep_reads, sweep_rungs
from core.store import sweeps as sweep_store
from core.store.session import session_scope
from core.store.sweep_tables import Sweep, SweepTrial
from tests.core.store.helpers import read
from worker import rungs
from worker.fused_job import run_delivery

# 900 steps, rungs at 100, 300 and 900 (a sweep's 1/9, 1/3, 1).
SPEC = {
    "epochs": 1, "train_limit": 900, "test_limit": 50, "device": "cpu",
    "validation_records": 100, "validation_rungs": [1 / 9, 1 / 3, 1.0],
}  # fmt: skip


@pytest.fixture
def worker_settings(settings: Settings, mnist_dir: Path) -> Settings:
    # A flush interval longer than the run: only a rung can stop it early.
    return settings.model_copy(
        update={"data_dir": mnist_dir, "allow_download": False, "torch_threads": 1,
                "flush_interval_s": 3600.0, "checkpoint_interval_s": 3600.0}
    )  # fmt: skip


def _sweep_run(
    engine: Engine, pruner: str = "paired", *, rivals: int = 1, prune_after: int | None = 2
) -> tuple[str, str]:
    """A sweep with trial 0 of one run (seed 0) and `rivals` trials whose runs have stored
    every rung already (so a verdict at trial 0's rungs could prune it: enough trials are
    there for `prune_after`); (sweep id, trial 0's experiment id)."""
    spec = build_spec("seed-adam", SPEC)
    request = {} if prune_after is None else {"prune_after": prune_after}
    with session_scope(engine) as session:
        sweep = Sweep(
            request=request, base={}, space={}, seeds=[0], sampler="random", pruner=pruner,
            objective="validation_accuracy", max_trials=1 + rivals, parallel=1 + rivals,
            rungs=3, sampler_seed=0,
        )  # fmt: skip
        session.add(sweep)
        session.flush()
        experiment, _ = experiments.create_experiment(session, spec, tags=["sweep", sweep.id])
        sweep_store.add_trial(session, sweep, 0, {}, {}, {}, [(0, experiment.id)])
        for number in range(1, 1 + rivals):
            rival, _ = experiments.create_experiment(session, spec, tags=["sweep", sweep.id])
            sweep_store.add_trial(session, sweep, number, {}, {}, {}, [(0, rival.id)])
            for step, fraction in ((100, 1 / 9), (300, 1 / 3), (900, 1.0)):
                figures = {"step": step, "fraction": fraction, "validation_accuracy": 0.5,
                           "validation_loss": 1.0}  # fmt: skip
                sweep_rungs.save_rung(session, rival.id, figures)
            rival.status = "succeeded"  # ended: not a run this delivery could take up too
            session.add(rival)
        return sweep.id, experiment.id


def _driver(engine: Engine, sweep_id: str, experiment_id: str, verdicts: list[bool]) -> None:
    """Each rung's verdict in turn once the run's figure for it is stored, as the driver
    writes it: judged + 1, and when pruned the trial's state and the run's cancel."""
    for index, prune in enumerate(verdicts):
        while True:
            with session_scope(engine) as session:
                seen = len(sweep_reads.rungs(session, [experiment_id])[experiment_id])
            if seen > index:
                break
            time.sleep(0.01)
        time.sleep(0.2)  # the driver's pass comes a while later
        with session_scope(engine) as session:
            trial = session.get(SweepTrial, (sweep_id, 0))
            assert trial is not None
            trial.judged = index + 1
            if prune:
                trial.state = "pruned"
                experiments.request_cancel(session, experiment_id)
            session.add(trial)
        if prune:
            return


def _deliver(
    engine: Engine, settings: Settings, eid: str, driver: Callable[[], None] | None = None
) -> None:
    thread = threading.Thread(target=driver) if driver else None
    if thread:
        thread.start()
    run_delivery(eid, engine, settings)
    if thread:
        thread.join(timeout=30)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool, float]]:
    """Every wait for a verdict: (rung index, its answer, seconds), the real wait each time."""
    seen: list[tuple[int, bool, float]] = []
    real = rungs.RungHold._await

    def recorded(self: rungs.RungHold, index: int) -> bool:
        started = time.monotonic()
        answer = real(self, index)
        seen.append((index, answer, time.monotonic() - started))
        return answer

    monkeypatch.setattr(rungs.RungHold, "_await", recorded)
    return seen


def test_a_run_pruned_at_a_rung_stops_at_that_rung(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]]
) -> None:
    sweep_id, eid = _sweep_run(engine)
    _deliver(engine, worker_settings, eid, lambda: _driver(engine, sweep_id, eid, [True]))
    done = read(engine, eid)
    assert done.status == "cancelled" and done.step == 100
    assert [(i, a) for i, a, _ in waits] == [(0, True)]


def test_a_run_judged_to_go_on_trains_to_its_end(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]]
) -> None:
    sweep_id, eid = _sweep_run(engine)
    _deliver(engine, worker_settings, eid, lambda: _driver(engine, sweep_id, eid, [False, False]))
    done = read(engine, eid)
    assert done.status == "succeeded" and done.step == 900
    # Held at the two judged rungs, each until the verdict came (the last rung: no wait).
    assert [(i, a) for i, a, _ in waits] == [(0, False), (1, False)]
    assert all(0.2 <= seconds < rungs.VERDICT_WAIT_S for _, _, seconds in waits)
    with session_scope(engine) as session:
        assert [r.step for r in sweep_reads.rungs(session, [eid])[eid]] == [100, 300, 900]


def test_with_no_verdict_in_time_the_run_goes_on_after_the_wait(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(rungs, "VERDICT_WAIT_S", 0.3)
    _, eid = _sweep_run(engine)
    _deliver(engine, worker_settings, eid)
    done = read(engine, eid)
    assert done.status == "succeeded" and done.step == 900
    assert [(i, a) for i, a, _ in waits] == [(0, False), (1, False)]
    assert all(0.3 <= seconds < 2.0 for _, _, seconds in waits)


def test_a_run_of_no_sweep_or_no_pruner_never_waits(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]]
) -> None:
    for eid in (_sweep_run(engine, pruner="none")[1], _plain(engine)):
        _deliver(engine, worker_settings, eid)
        assert read(engine, eid).status == "succeeded"
    assert waits == []


def _plain(engine: Engine) -> str:
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, build_spec("seed-adam", SPEC))
        return experiment.id


def test_where_too_few_trials_reached_a_rung_the_run_never_waits(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # No driver: a wait would last the whole (long) VERDICT_WAIT_S at each judged rung.
    monkeypatch.setattr(rungs, "VERDICT_WAIT_S", 30.0)
    passed = _passed(monkeypatch)
    for setup in ({"rivals": 0, "prune_after": None}, {"rivals": 4, "prune_after": None},
                  {"rivals": 0, "prune_after": 1}, {"rivals": 0, "pruner": "asha"}):  # fmt: skip
        started = time.monotonic()
        _, eid = _sweep_run(engine, **setup)  # type: ignore[arg-type]
        _deliver(engine, worker_settings, eid)
        assert read(engine, eid).status == "succeeded", setup
        assert time.monotonic() - started < 30.0, setup
    # 1 or 5 trials at a rung where the paired pruner prunes from 6, one where it needs 2 (a
    # rival to pair with) whatever `prune_after` says, and asha's trial alone: never held.
    assert waits == [] and passed == [0, 1] * 4


def test_a_run_gone_past_a_rung_and_pruned_later_stops_at_its_next_judged_rung(
    engine: Engine, worker_settings: Settings, waits: list[tuple[int, bool, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    sweep_id, eid = _sweep_run(engine, rivals=0)  # alone: rung 0 cannot prune it
    real = rungs.RungHold._verdict

    def then_pruned(self: rungs.RungHold, index: int) -> bool:
        answer = real(self, index)
        if index == 0:  # the driver decides once the run has gone on (more trials came)
            with session_scope(engine) as session:
                trial = session.get(SweepTrial, (sweep_id, 0))
                assert trial is not None
                trial.state, trial.judged = "pruned", 1
                session.add(trial)
                experiments.request_cancel(session, eid)
        return answer

    monkeypatch.setattr(rungs.RungHold, "_verdict", then_pruned)
    _deliver(engine, worker_settings, eid)
    done = read(engine, eid)
    assert done.status == "cancelled" and done.step == 300
    assert waits == []  # neither rung waited: the first could not prune, the second knew


def _passed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The judged rungs runs went past without waiting, every run's in turn."""
    seen: list[int] = []
    real = rungs.RungHold._verdict

    def recorded(self: rungs.RungHold, index: int) -> bool:
        before = len(self.passed)
        answer = real(self, index)
        seen.extend(self.passed[before:])
        return answer

    monkeypatch.setattr(rungs.RungHold, "_verdict", recorded)
    return seen
