"""The sweep driver: a background pass of the API process that moves every active sweep on.

Per sweep, under its lease (core/store/sweeps.py: one driver at a time across API processes):
1. each trial's state from its runs' experiments (running, failed, complete);
2. the pruner at each rung every seed of a trial has reported (validation figures only: the
   test set is never read while a sweep decides). `paired`: core/sweeps/paired.py, a trial
   outside the rung's top third that is clearly worse than the band's edge on the same
   seeds; `asha`, `hyperband`, `median`: Optuna's, on the seeds' mean, over the sweep's
   study. A pruned trial's unfinished runs are cancelled. The last rung (the full budget)
   is not judged: nothing is left to save;
3. new trials, asked of the sweep's Optuna study (kept between passes and brought up to date
   from the stored trials, core/sweeps/study_cache.py; built again from them whole when this
   process takes the lease, or the store moved otherwise), up to `parallel` running and
   `max_trials` in all; their runs are ordinary experiments of the sweep's owner, counted
   against its key's quotas (over one, the sweep waits and says so in `note`);
4. the sweep ends `succeeded` once max_trials trials and all their runs have ended.

How the lease fences each of the pass's commits: api/background/sweep_lease.py.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from sqlalchemy import Engine
from sqlmodel import Session

from api.background.dispatch import Dispatcher
from api.background.periodic import running_every
from api.background.sweep_lease import LeaseLost, SweepLease
from api.background.sweep_records import figures, records
from core import kinds
from core.cost import estimate
from core.kinds import AnySpec
from core.settings import Settings
from core.store import errors, experiments, quotas, sweep_reads
from core.store import sweeps as sweep_store
from core.store.clock import utcnow
from core.store.models import TERMINAL, Status
from core.store.sweep_tables import Sweep, SweepTrial
from core.store.wake import Waker
from core.sweeps import paired, study
from core.sweeps.objectives import maximizes
from core.sweeps.space import apply_params, decode, parse_space
from core.sweeps.study_cache import StudyCache

logger = logging.getLogger(__name__)

# While a sweep is active the driver looks this often whether anything new happened (a rung
# stored, a run ended, a sweep created or cancelled: core.store.sweeps.activity, one cheap
# query) and makes its pass at once if so, else on its interval: a sweep's run waits at a
# rung for the pruner's verdict (worker/rungs.py), so this is time a worker stands idle.
WAKE_S = 0.05
ENDED = ("pruned", "complete", "failed")
WAITING = "waiting: "  # the note of a sweep whose next trial waits for its owner's quota


class SweepDriver:
    def __init__(self, engine: Engine, dispatcher: Dispatcher, settings: Settings) -> None:
        self.engine, self.dispatcher, self.settings = engine, dispatcher, settings
        self.lease = SweepLease(engine, settings.sweep_lease_s)
        self._signal: tuple[int, ...] | None = None
        self._last_pass = float("-inf")
        self._active = 0  # sweeps active at the last pass
        self._studies = StudyCache()
        # Sweeps whose lease this process held through its last pass of them: a study kept
        # for any other was kept while another process may have driven the sweep.
        self._held: set[str] = set()

    def pass_when_due(self, interval_s: float) -> int:
        """A pass when something changed since the last one or `interval_s` has passed
        since it; with no sweep active at the last pass, only on the interval."""
        now = time.monotonic()
        due = now - self._last_pass >= interval_s
        signal = None
        if not due and self._active:
            with self.lease.session() as session:
                signal = sweep_store.activity(session)
            due = signal != self._signal
        if not due:
            return 0
        if signal is None:
            with self.lease.session() as session:
                signal = sweep_store.activity(session)
        self._signal, self._last_pass = signal, now
        self._active = self.one_pass()
        return self._active

    def one_pass(self) -> int:
        with self.lease.session() as session:
            ids = sweep_store.active_sweep_ids(session)
        for gone in set(self._studies.entries) - set(ids):
            self._studies.drop(gone)
            self._held.discard(gone)
        for sweep_id in ids:
            try:
                self.drive(sweep_id)
            except Exception:
                logger.exception("sweep %s: driver pass failed", sweep_id)
        return len(ids)

    def drive(self, sweep_id: str) -> None:
        to_send: list[str] = []
        with self.lease.session() as session:
            if not self.lease.take(session, sweep_id):
                self._let_go(sweep_id)
                return
            if sweep_id not in self._held:
                self._studies.drop(sweep_id)  # taken (back) over: built from the store again
            self._held.add(sweep_id)
            try:
                sweep = sweep_store.require_sweep(session, sweep_id)
                self._update(session, sweep)
                # The judgements stand on their own: a trial asked next that waits for the
                # owner's quota rolls its own transaction back, not the prunes that free it.
                self.lease.commit(session, sweep_id)
                if sweep.status == "running":
                    self._fill(session, sweep, to_send)
                self._maybe_finish(session, sweep)
                self.lease.commit(session, sweep_id)
            except LeaseLost:
                logger.info("sweep %s: driven by another process now", sweep_id)
                self._let_go(sweep_id)
            except Exception:
                self._let_go(sweep_id)
                raise
        # What was committed goes out, even when the pass stopped early (a run committed and
        # never sent is sent by the reaper later, too).
        if to_send:
            self.dispatcher.dispatch_all(to_send)

    def _let_go(self, sweep_id: str) -> None:
        self._held.discard(sweep_id)
        self._studies.drop(sweep_id)

    # 1 and 2 ----------------------------------------------------------------------------

    def _update(self, session: Session, sweep: Sweep) -> None:
        trials = sweep_store.trials(session, sweep.id)
        runs = sweep_store.run_rows(session, sweep.id, sweep.objective)
        ids = [e.id for members in runs.values() for _, e in members]
        rungs = sweep_reads.rungs(session, ids)
        maximize = maximizes(sweep.objective)
        space = parse_space(sweep.space, sweep.base)
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
                values = [float("nan") if e.objective is None else e.objective for e in trial_runs]
                trial.value = sum(values) / len(values)
                self._end(session, trial, "complete", None)

    def _judge(
        self, session: Session, sweep: Sweep, trial: SweepTrial, trials: list[SweepTrial],
        runs: dict[int, list[tuple[Any, sweep_store.RunRow]]], rungs: dict[str, list[Any]],
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
            decision = paired.decide(
                mine, others, looks=sweep.rungs - 1, maximize=maximize, number=trial.number,
                min_trials=int(sweep.request.get("prune_after", paired.MIN_TRIALS)),
            )  # fmt: skip
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

    def _fill(self, session: Session, sweep: Sweep, created: list[str]) -> None:
        """Ask new trials, one transaction each; their runs' ids go to `created` as each
        commits."""
        trials = sweep_store.trials(session, sweep.id)
        active = sum(1 for t in trials if t.state not in ENDED)
        if len(trials) >= sweep.max_trials or active >= sweep.parallel:
            return  # nothing to ask: the runs and their rungs need not be read
        space = parse_space(sweep.space, sweep.base)
        runs = sweep_store.run_rows(session, sweep.id, sweep.objective)
        rungs = sweep_reads.rungs(session, [e.id for m in runs.values() for _, e in m])
        recs = records(trials, runs, rungs, sweep)
        # The status is read again after each commit: a cancel stops the asking.
        while (
            len(recs) < sweep.max_trials and active < sweep.parallel and sweep.status == "running"
        ):
            number = len(recs)
            optuna_params, attrs = self._studies.ask(
                sweep.id, space, recs, sampler=sweep.sampler, seed=sweep.sampler_seed,
                maximize=maximizes(sweep.objective),
            )  # fmt: skip
            params = decode(space, optuna_params)
            with self.lease.collisions(session, sweep.id):
                new = self._add_trial(session, sweep, number, params, optuna_params, attrs)
            if new is None:  # waiting for the owner's quota
                self._studies.drop(sweep.id)  # it holds a trial the store does not
                self.lease.commit(session, sweep.id)
                return
            active += 1 if new else 0
            recs.append(study.TrialRecord(number, optuna_params, "running", system_attrs=attrs))
            self.lease.commit(session, sweep.id)
            created += [eid for _, eid in new]

    def _add_trial(
        self, session: Session, sweep: Sweep, number: int, params: dict[str, Any],
        optuna_params: dict[str, Any], attrs: dict[str, Any],
    ) -> list[tuple[int, str]] | None:  # fmt: skip
        """Store trial `number` with a run per seed, or failed when its spec is not valid;
        its runs' (seed, id), or None (nothing stored but the note) over the owner's quota."""
        try:
            spec_dict = apply_params(sweep.base, params)
            specs = [cast(AnySpec, kinds.parse({**spec_dict, "seed": s})) for s in sweep.seeds]
        except ValueError as exc:
            trial = sweep_store.add_trial(session, sweep, number, params, optuna_params, attrs, [])
            self._end(session, trial, "failed", f"not a valid spec: {exc}"[:500])
            return []
        if sweep.key_id is not None:
            quotas.lock_key(session, sweep.key_id)
        new: list[tuple[int, str]] = []
        for spec in specs:
            experiment, _ = experiments.create_experiment(
                session, spec, tags=["sweep", sweep.id], preset=sweep.preset,
                owner=sweep.owner, key_id=sweep.key_id, cost=estimate(spec).cpu_hours,
            )  # fmt: skip
            new.append((spec.seed, experiment.id))
        if sweep.key_id is not None and not self._within_quota(session, sweep, specs):
            return None
        sweep_store.add_trial(session, sweep, number, params, optuna_params, attrs, new)
        if sweep.note is not None and sweep.note.startswith(WAITING):
            sweep.note = None  # within the quota again: no longer waiting
            session.add(sweep)
        return new

    def _within_quota(self, session: Session, sweep: Sweep, specs: list[AnySpec]) -> bool:
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
            session.rollback()  # the trial's runs go; the note stays (the caller commits it)
            sweep = sweep_store.require_sweep(session, sweep.id)
            sweep.note = f"{WAITING}{exc}"
            session.add(sweep)
            return False
        return True

    def _maybe_finish(self, session: Session, sweep: Sweep) -> None:
        trials = sweep_store.trials(session, sweep.id)
        if not all(t.state in ENDED for t in trials):
            return
        # A pruned (or failed) trial ends at once, its unfinished runs asked to stop: the
        # sweep ends once they have, so nothing of it still trains (or counts) after its end.
        runs = sweep_store.run_rows(session, sweep.id, sweep.objective)
        if any(e.status not in TERMINAL for members in runs.values() for _, e in members):
            return
        if sweep.status == "cancelling":
            sweep_store.finish(session, sweep, "cancelled")
        elif len(trials) >= sweep.max_trials:
            sweep_store.finish(session, sweep, "succeeded")


@contextlib.asynccontextmanager
async def sweeps_running(
    engine: Engine, dispatcher: Dispatcher, settings: Settings, interval_s: float = 1.0,
    failed: Callable[[Exception], None] = lambda exc: logger.warning("sweep pass: %s", exc),
) -> AsyncIterator[None]:  # fmt: skip
    driver = SweepDriver(engine, dispatcher, settings)
    # Each step waits for a worker's wake-up (a rung stored, a run ended: core/store/wake.py)
    # or for the poll interval, whichever comes first, then passes if anything changed.
    waker = Waker(engine)
    wait_s = min(WAKE_S, interval_s)

    def step() -> int:
        waker.wait(wait_s)
        return driver.pass_when_due(interval_s)

    try:
        async with running_every("sweeps", 0.0, step, failed=failed):
            yield
    finally:
        waker.close()
