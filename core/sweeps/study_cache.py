"""A sweep's Optuna study kept between driver passes, brought up to date instead of rebuilt.

Rebuilding the study from every stored trial (core/sweeps/study.py `rebuild`) on every ask
cost a driver pass time that grew with the trials (about 85 ms at 150 trials on a loaded
2-core machine, on top of the sampler's own work), and a run waiting at a rung for its
verdict waits for the pass under way. The cache keeps, per sweep, the study and the trial
records it was built from; at the next ask it compares them with the records the pass just
read from the store and applies only what moved forward: new trials, a running trial's new
rung means and system attributes, its end. Anything else (a trial gone or changed after it
ended, fewer trials, other parameters) and the study is rebuilt from the records, as before.
So the study asked is always the one a rebuild from the same records would give, and the
same stored trials still give the same next parameters whichever process drives the sweep
(tests/core/sweeps/test_study_cache.py asks both ways and compares).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState, create_trial

from core.sweeps import study
from core.sweeps.space import Param
from core.sweeps.study import TrialRecord


@dataclass
class _Entry:
    study: optuna.Study
    records: list[TrialRecord]
    maximize: bool


@dataclass
class StudyCache:
    entries: dict[str, _Entry] = field(default_factory=dict)
    rebuilds: int = 0  # how many times a study was built whole (for tests and profiling)

    def drop(self, sweep_id: str) -> None:
        """Forget a sweep's study: its next ask rebuilds it from the store's records."""
        self.entries.pop(sweep_id, None)

    def study_for(
        self,
        sweep_id: str,
        space: dict[str, Param],
        records: list[TrialRecord],
        *,
        maximize: bool,
    ) -> optuna.Study:
        """The study of exactly `records` (in number order, numbered 0..n-1)."""
        entry = self.entries.get(sweep_id)
        if entry is None or entry.maximize != maximize or not _advance(entry, space, records):
            self.rebuilds += 1
            entry = _Entry(study.rebuild(space, records, maximize=maximize), [], maximize)
        entry.records = list(records)
        self.entries[sweep_id] = entry
        return entry.study

    def asked(self, sweep_id: str, record: TrialRecord) -> None:
        """The trial just asked of the sweep's study, as its record will be stored."""
        entry = self.entries.get(sweep_id)
        if entry is not None:
            entry.records.append(record)

    def ask(
        self,
        sweep_id: str,
        space: dict[str, Param],
        records: list[TrialRecord],
        *,
        sampler: str,
        seed: int,
        maximize: bool,
    ) -> tuple[dict[str, object], dict[str, object]]:
        """As study.ask, on the kept study: the same parameters for the same records."""
        number = len(records)
        found = self.study_for(sweep_id, space, records, maximize=maximize)
        found.sampler = study.make_sampler(sampler, space, seed, number)
        try:
            params, attrs = study.ask_of(found, space)
        except Exception:
            self.drop(sweep_id)
            raise
        self.asked(sweep_id, TrialRecord(number, params, "running", system_attrs=attrs))
        return params, attrs


def _advance(entry: _Entry, space: dict[str, Param], records: list[TrialRecord]) -> bool:
    """Bring entry.study from entry.records to `records` in place; False when that takes a
    rebuild (the study may be half updated then: the caller throws it away)."""
    old = entry.records
    if len(records) < len(old) or [r.number for r in records] != list(range(len(records))):
        return False
    storage = entry.study._storage
    trials = entry.study.get_trials(deepcopy=False)
    if len(trials) != len(old):
        return False
    for before, now, trial in zip(old, records, trials, strict=False):
        if before == now:
            continue
        if before.params != now.params or _state(before) is not TrialState.RUNNING:
            return False
        if any(now.intermediate.get(k) != v for k, v in before.intermediate.items()):
            return False
        if any(k not in now.system_attrs for k in before.system_attrs):
            return False
        tid = trial._trial_id
        for step, value in now.intermediate.items():
            if step not in before.intermediate:
                storage.set_trial_intermediate_value(tid, step, value)
        for key, value in now.system_attrs.items():
            if before.system_attrs.get(key) != value:
                storage.set_trial_system_attr(tid, key, value)
        state = _state(now)
        if state is not TrialState.RUNNING:
            complete = state is TrialState.COMPLETE
            values = [now.value] if complete and now.value is not None else None
            storage.set_trial_state_values(tid, state, values)
    distributions = {path: param.distribution() for path, param in space.items()}
    with study.quiet():
        for record in records[len(old) :]:
            state = _state(record)
            entry.study.add_trial(
                create_trial(
                    state=state, params=record.params, distributions=distributions,
                    value=record.value if state is TrialState.COMPLETE else None,
                    intermediate_values=dict(record.intermediate),
                    system_attrs=dict(record.system_attrs),
                )
            )  # fmt: skip
    return True


def _state(record: TrialRecord) -> TrialState:
    """The record's state as rebuild() gives it to Optuna."""
    state = study.STATES[record.state]
    if state is TrialState.COMPLETE and record.value is None:
        return TrialState.FAIL
    return state
