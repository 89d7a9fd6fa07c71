"""The sweep driver: a background pass of the API process that moves every active sweep on.

Per sweep, under its lease (core/store/sweeps.py: one driver at a time across API processes):
1. each trial's state from its runs' experiments (running, failed, complete);
2. the pruner at each rung every seed of a trial has reported (validation figures only: the
   test set is never read while a sweep decides). `paired`: core/sweeps/paired.py against
   the best trial at that rung on the same seeds; `asha`, `hyperband`, `median`: Optuna's, on
   the seeds' mean, over a study rebuilt from the stored trials. A pruned trial's unfinished
   runs are cancelled. The last rung (the full budget) is not judged: nothing is left to save;
3. new trials, asked from a study rebuilt from the stored trials, up to `parallel` running and
   `max_trials` in all; their runs are ordinary experiments of the sweep's owner, counted
   against its key's quotas (over one, the sweep waits and says so in `note`);
4. the sweep ends `succeeded` once max_trials trials have ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from api.background.dispatch import Dispatcher
from api.background.periodic import running_every
from core.cost import estimate
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import errors, experiments, quotas
from core.store import sweeps as sweep_store
from core.store.clock import utcnow
from core.store.models import TERMINAL, Experiment, Status
from core.store.sweep_tables import Sweep, SweepTrial
from core.sweeps import paired, study
from core.sweeps.space import apply_params, decode, parse_space

logger = logging.getLogger(__name__)

LEASE_S = 30.0
# While a sweep is active the driver looks this often whether anything new happened (a rung
# stored, a run ended, a sweep created or cancelled: core.store.sweeps.activity, one cheap
# query) and makes its pass at once if so, else on its interval: a sweep's run waits at a
# rung for the pruner's verdict (worker/rungs.py), so this is time a worker stands idle.
WAKE_S = 0.05
ENDED = ("pruned", "complete", "failed")


def driver_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def figures(
    runs: list[tuple[Any, Experiment]], rungs: dict[str, list[Any]], objective: str, index: int
) -> dict[int, float]:
    """Per seed, the objective at rung `index` (0-based) of each run that has reported it."""
    found: dict[int, float] = {}
    for run, experiment in runs:
        rows = rungs.get(experiment.id, [])
        if len(rows) > index:
            found[run.seed] = float(getattr(rows[index], objective))
    return found


def records(
    trials: list[SweepTrial], runs: dict[int, list[tuple[Any, Experiment]]],
    rungs: dict[str, list[Any]], sweep: Sweep,
) -> list[study.TrialRecord]:  # fmt: skip
    out = []
    for trial in trials:
        intermediate = {}
        for k in range(min(trial.judged + 1, sweep.rungs)):
            seeds = figures(runs.get(trial.number, []), rungs, sweep.objective, k)
            if len(seeds) == len(sweep.seeds):
                intermediate[study.rung_resource(k)] = sum(seeds.values()) / len(seeds)
        out.append(
            study.TrialRecord(
                trial.number, trial.optuna_params, trial.state, trial.value, intermediate,
                trial.system_attrs,
            )
        )  # fmt: skip
    return out


class SweepDriver:
    def __init__(self, engine: Engine, dispatcher: Dispatcher, settings: Settings) -> None:
        self.engine, self.dispatcher, self.settings = engine, dispatcher, settings
        self.me = driver_name()
        self._signal: tuple[int, ...] | None = None
        self._last_pass = float("-inf")
        self._active = 0  # sweeps active at the last pass

    def pass_when_due(self, interval_s: float) -> int:
        """A pass when something changed since the last one or `interval_s` has passed
        since it; with no sweep active at the last pass, only on the interval."""
        now = time.monotonic()
        due = now - self._last_pass >= interval_s
        signal = None
        if not due and self._active:
            with Session(self.engine) as session:
                signal = sweep_store.activity(session)
            due = signal != self._signal
        if not due:
            return 0
        if signal is None:
            with Session(self.engine) as session:
                signal = sweep_store.activity(session)
        self._signal, self._last_pass = signal, now
        self._active = self.one_pass()
        return self._active

    def one_pass(self) -> int:
        with Session(self.engine) as session:
            ids = sweep_store.active_sweep_ids(session)
        for sweep_id in ids:
            try:
                self.drive(sweep_id)
            except Exception:
                logger.exception("sweep %s: driver pass failed", sweep_id)
        return len(ids)

    def drive(self, sweep_id: str) -> None:
        to_send: list[str] = []
        with Session(self.engine) as session:
            if not sweep_store.take_lease(session, sweep_id, self.me, LEASE_S):
                session.rollback()
                return
            session.commit()
            sweep = sweep_store.require_sweep(session, sweep_id)
            self._update(session, sweep)
            # The verdicts first: a run held at a rung reads them (worker/rungs.py), and
            # asking the sampler for new trials below may take a while.
            session.commit()
            if sweep.status == "running":
                to_send = self._fill(session, sweep)
            self._maybe_finish(session, sweep)
            session.commit()
        if to_send:
            self.dispatcher.dispatch_all(to_send)

    # 1 and 2 ----------------------------------------------------------------------------

    def _update(self, session: Session, sweep: Sweep) -> None:
        trials = sweep_store.trials(session, sweep.id)
        runs = sweep_store.runs_with_experiments(session, sweep.id)
        ids = [e.id for members in runs.values() for _, e in members]
        rungs = sweep_store.rungs_of(session, ids)
        maximize = sweep.objective == "validation_accuracy"
        space = parse_space(sweep.space)
        for trial in trials:
            if trial.state in ENDED:
                continue
            members = runs.get(trial.number, [])
            trial_runs = [e for _, e in members]
            if any(e.status == Status.running.value for e in trial_runs):
                trial.state = "running"
            if any(e.status in (Status.failed.value, Status.cancelled.value) for e in trial_runs):
                bad = next(e for e in trial_runs if e.status != Status.succeeded.value)
                self._end(session, trial, "failed", f"run {bad.id} {bad.status}: {bad.error}")
                continue
            while sweep.pruner != "none" and trial.judged < sweep.rungs - 1:
                mine = figures(members, rungs, sweep.objective, trial.judged)
                if len(mine) < len(sweep.seeds):
                    break
                if self._judge(session, sweep, trial, trials, runs, rungs, mine, space, maximize):
                    break
            if trial.state in ENDED:
                continue
            if trial_runs and all(e.status == Status.succeeded.value for e in trial_runs):
                if sweep.pruner != "none" and trial.judged < sweep.rungs - 1:
                    continue  # a rung not yet seen (its figures still being written)
                values = [float((e.metrics or {}).get(sweep.objective, "nan")) for e in trial_runs]
                trial.value = sum(values) / len(values)
                self._end(session, trial, "complete", None)

    def _judge(
        self, session: Session, sweep: Sweep, trial: SweepTrial, trials: list[SweepTrial],
        runs: dict[int, list[tuple[Any, Experiment]]], rungs: dict[str, list[Any]],
        mine: dict[int, float], space: dict[str, Any], maximize: bool,
    ) -> bool:  # fmt: skip
        """Look at `trial` at its next rung; True when it was pruned."""
        index = trial.judged
        if sweep.pruner == "paired":
            others = {
                t.number: figures(runs.get(t.number, []), rungs, sweep.objective, index)
                for t in trials
                if t.number != trial.number
            }
            decision = paired.decide(mine, others, looks=sweep.rungs - 1, maximize=maximize)
            prune, note = decision.prune, decision.as_dict()
        else:
            recs = records(trials, runs, rungs, sweep)
            recs[trial.number] = study.TrialRecord(
                trial.number, trial.optuna_params, "running", None,
                {**recs[trial.number].intermediate,
                 study.rung_resource(index): sum(mine.values()) / len(mine)},
                trial.system_attrs,
            )  # fmt: skip
            prune, attrs = study.optuna_prunes(
                sweep.pruner, space, recs, trial.number, rungs=sweep.rungs, maximize=maximize
            )
            trial.system_attrs = attrs
            note = {"prune": prune, "reason": f"optuna {sweep.pruner} pruner on the seeds' mean"}
        trial.decisions = [*trial.decisions, {"rung": index, **note}]
        trial.judged = index + 1
        session.add(trial)
        if prune:
            trial.rung = index
            self._end(session, trial, "pruned", str(note["reason"]))
            for _, experiment in runs.get(trial.number, []):
                if experiment.status not in TERMINAL:
                    with contextlib.suppress(errors.AlreadyFinished):
                        experiments.request_cancel(session, experiment.id)
        return prune

    def _end(self, session: Session, trial: SweepTrial, state: str, reason: str | None) -> None:
        trial.state, trial.reason, trial.finished_at = state, reason, utcnow()
        session.add(trial)

    # 3 and 4 ----------------------------------------------------------------------------

    def _fill(self, session: Session, sweep: Sweep) -> list[str]:
        trials = sweep_store.trials(session, sweep.id)
        active = sum(1 for t in trials if t.state not in ENDED)
        space = parse_space(sweep.space)
        created: list[str] = []
        runs = sweep_store.runs_with_experiments(session, sweep.id)
        rungs = sweep_store.rungs_of(session, [e.id for m in runs.values() for _, e in m])
        recs = records(trials, runs, rungs, sweep)
        while len(recs) < sweep.max_trials and active < sweep.parallel:
            number = len(recs)
            optuna_params, attrs = study.ask(
                space, recs, sampler=sweep.sampler, seed=sweep.sampler_seed,
                maximize=sweep.objective == "validation_accuracy",
            )  # fmt: skip
            params = decode(space, optuna_params)
            new: list[tuple[int, str]] = []
            try:
                spec_dict = apply_params(sweep.base, params)
                specs = [
                    ExperimentSpec.model_validate({**spec_dict, "seed": s}) for s in sweep.seeds
                ]
            except ValueError as exc:
                trial = sweep_store.add_trial(
                    session, sweep, number, params, optuna_params, attrs, []
                )
                self._end(session, trial, "failed", f"not a valid spec: {exc}"[:500])
            else:
                if sweep.key_id is not None:
                    quotas.lock_key(session, sweep.key_id)
                for spec in specs:
                    experiment, _ = experiments.create_experiment(
                        session, spec, tags=["sweep", sweep.id], preset=sweep.preset,
                        owner=sweep.owner, key_id=sweep.key_id, cost=estimate(spec).cpu_hours,
                    )  # fmt: skip
                    new.append((spec.seed, experiment.id))
                if sweep.key_id is not None and not self._within_quota(session, sweep, specs):
                    return created
                sweep_store.add_trial(session, sweep, number, params, optuna_params, attrs, new)
                created += [eid for _, eid in new]
                active += 1
            recs.append(study.TrialRecord(number, optuna_params, "running", system_attrs=attrs))
            session.commit()
        return created

    def _within_quota(self, session: Session, sweep: Sweep, specs: list[ExperimentSpec]) -> bool:
        limits = quotas.Quotas.of(self.settings)
        costs = [estimate(s) for s in specs]
        assert sweep.key_id is not None
        try:
            quotas.check(
                session, sweep.key_id, limits, new_experiments=len(specs),
                new_cost=sum(c.cpu_hours for c in costs),
                account=sweep.owner, new_stored_bytes=sum(c.stored_bytes for c in costs),
            )  # fmt: skip
        except quotas.QuotaExceeded as exc:
            session.rollback()
            sweep = sweep_store.require_sweep(session, sweep.id)
            sweep.note = f"waiting: {exc}"
            session.add(sweep)
            session.commit()
            return False
        return True

    def _maybe_finish(self, session: Session, sweep: Sweep) -> None:
        trials = sweep_store.trials(session, sweep.id)
        if not all(t.state in ENDED for t in trials):
            return
        if sweep.status == "cancelling":
            sweep_store.finish(session, sweep, "cancelled")
        elif len(trials) >= sweep.max_trials:
            sweep_store.finish(session, sweep, "succeeded")


def sweeps_running(
    engine: Engine, dispatcher: Dispatcher, settings: Settings, interval_s: float = 1.0,
    failed: Callable[[Exception], None] = lambda exc: logger.warning("sweep pass: %s", exc),
) -> AbstractAsyncContextManager[None]:  # fmt: skip
    driver = SweepDriver(engine, dispatcher, settings)
    return running_every(
        "sweeps", min(WAKE_S, interval_s), lambda: driver.pass_when_due(interval_s), failed=failed
    )
