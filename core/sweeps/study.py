"""Ask and tell over an Optuna study built from the stored trials.

Nothing of Optuna's is stored: a study is built in memory from the trials the store holds
(their parameters, state, seeds' means at each rung, final value and the system attributes
Optuna's samplers and pruners keep) and asked, or a pruner is. The driver keeps a sweep's
study between passes and brings it up to date from the same records (core/sweeps/
study_cache.py), which gives the study a rebuild would. The sampler's seed is derived from
the sweep's seed and the number of the trial being asked, so the same stored trials give the
same next parameters whichever API process drives the sweep.

Rungs are Optuna steps in resource units: with R rungs at fractions 3^-(R-1) .. 1 of the
budget, rung k is step 3^k (1, 3, 9 for three rungs), so Optuna's successive halving and
Hyperband (reduction factor 3, min resource 1) see their own geometric ladder.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import TrialState, create_trial

from core.sweeps.space import Param

SAMPLERS = ("tpe", "random", "grid", "qmc", "cmaes")
PRUNERS = ("paired", "asha", "hyperband", "median", "none")
REDUCTION = 3
MAX_GRID_POINTS = 10_000
STATES = {
    "queued": TrialState.RUNNING,
    "running": TrialState.RUNNING,
    "pruned": TrialState.PRUNED,
    "complete": TrialState.COMPLETE,
    "failed": TrialState.FAIL,
}
STUDY_NAME = "sweep"  # Hyperband places trials in brackets by a hash of this and the number


def rung_fractions(rungs: int) -> list[float]:
    return [REDUCTION ** (k - rungs + 1) for k in range(rungs)]


def rung_resource(index: int) -> int:
    return int(REDUCTION**index)


@dataclass(frozen=True)
class TrialRecord:
    number: int
    params: dict[str, Any]  # Optuna's values (a choice as its JSON text)
    state: str
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)  # resource -> seeds' mean
    system_attrs: dict[str, Any] = field(default_factory=dict)


class SamplerUnavailable(ValueError):
    pass


@contextmanager
def quiet() -> Iterator[None]:
    # Optuna logs every trial and warns about experimental features; the driver reports itself.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def grid_space(space: dict[str, Param]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for path, param in space.items():
        values = param.grid()
        if values is None:
            raise SamplerUnavailable(f"{path}: the grid sampler takes `choice` and `int` only")
        grid[path] = values
    points = 1
    for values in grid.values():
        points *= len(values)
    if points > MAX_GRID_POINTS:
        raise SamplerUnavailable(f"the grid has {points:,} points; the bound is {MAX_GRID_POINTS}")
    return grid


def check_sampler(name: str, space: dict[str, Param]) -> None:
    """Raise SamplerUnavailable when `name` cannot search `space`."""
    if name == "grid":
        grid_space(space)


class IndexedQMCSampler(optuna.samplers.QMCSampler):
    """Optuna's QMC sampler with the point's index in the sequence taken from the number of
    the trial asked rather than from a counter kept in the study. Optuna's counter lives in
    the study's system attributes, which nothing stores: a study rebuilt from the store
    started it again at 0 and drew the same point for every trial from the second on.

    A study that lives through the whole sweep draws trial 0 with the independent sampler
    (no search space is known yet) and point k of the sequence for trial k + 1; the index
    here is the same, so the points are the ones a long-lived study would ask, from any
    rebuild (tests/core/sweeps/test_study_cache.py compares both)."""

    def __init__(self, *, seed: int, number: int) -> None:
        super().__init__(seed=seed, scramble=True)
        self._number = number

    def _find_sample_id(self, study: optuna.Study, search_space: dict[str, Any]) -> int:
        return max(self._number - 1, 0)


def make_sampler(name: str, space: dict[str, Param], seed: int, number: int) -> BaseSampler:
    with quiet():
        return _sampler(name, space, seed, number)


def _sampler(name: str, space: dict[str, Param], seed: int, number: int) -> BaseSampler:
    per_ask = (seed * 1_000_003 + number) % 2**32
    if name == "random":
        return optuna.samplers.RandomSampler(seed=per_ask)
    # The grid's order (shuffled by its seed) and the QMC sequence (indexed by the trial
    # count) must be the same on every ask: one seed for the sweep.
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(space), seed=seed % 2**32)
    if name == "qmc":
        return IndexedQMCSampler(seed=seed % 2**32, number=number)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=per_ask)
    return optuna.samplers.TPESampler(seed=per_ask, constant_liar=True)


def make_pruner(name: str, rungs: int) -> BasePruner | None:
    top = rung_resource(rungs - 1)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(top, 2), reduction_factor=REDUCTION
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    return None


def rebuild(
    space: dict[str, Param],
    trials: list[TrialRecord],
    *,
    maximize: bool,
    sampler: BaseSampler | None = None,
    pruner: BasePruner | None = None,
) -> optuna.Study:
    distributions = {path: param.distribution() for path, param in space.items()}
    with quiet():
        study = optuna.create_study(
            study_name=STUDY_NAME,
            direction="maximize" if maximize else "minimize",
            sampler=sampler or optuna.samplers.RandomSampler(seed=0),
            pruner=pruner or optuna.pruners.NopPruner(),
        )
        for record in sorted(trials, key=lambda t: t.number):
            state = STATES[record.state]
            value = record.value if state is TrialState.COMPLETE else None
            if state is TrialState.COMPLETE and value is None:
                state = TrialState.FAIL
            study.add_trial(
                create_trial(
                    state=state,
                    value=value,
                    params=record.params,
                    distributions=distributions,
                    intermediate_values=dict(record.intermediate),
                    system_attrs=dict(record.system_attrs),
                )
            )
    return study


def ask(
    space: dict[str, Param],
    trials: list[TrialRecord],
    *,
    sampler: str,
    seed: int,
    maximize: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's Optuna parameters and the system attributes the sampler set on it."""
    number = len(trials)
    chosen = make_sampler(sampler, space, seed, number)
    return ask_of(rebuild(space, trials, maximize=maximize, sampler=chosen), space)


def ask_of(study: optuna.Study, space: dict[str, Param]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask `study` (rebuilt or kept) for the next trial over `space`: its parameters and the
    system attributes its sampler set on it."""
    distributions = {path: param.distribution() for path, param in space.items()}
    with quiet():
        trial = study.ask(distributions)
        frozen = study.get_trials(deepcopy=False)[trial.number]
    return dict(frozen.params), dict(frozen.system_attrs)


def optuna_prunes(
    name: str,
    space: dict[str, Param],
    trials: list[TrialRecord],
    number: int,
    *,
    rungs: int,
    maximize: bool,
) -> tuple[bool, dict[str, Any]]:
    """Whether Optuna's pruner `name` stops trial `number` at its last reported rung (its
    record must be running, with the rungs so far as intermediate values), and the system
    attributes it leaves on the trial (kept for the next look)."""
    pruner = make_pruner(name, rungs)
    if pruner is None:
        return False, {}
    study = rebuild(space, trials, maximize=maximize, pruner=pruner)
    with quiet():
        frozen = study.get_trials(deepcopy=False)[number]
        prune = bool(pruner.prune(study, frozen))
        after = study.get_trials(deepcopy=False)[number]
    return prune, dict(after.system_attrs)


def importances(
    space: dict[str, Param], trials: list[TrialRecord], *, maximize: bool
) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA: fANOVA would need scikit-learn) over the
    complete trials; {} with fewer than two, or when every complete trial has the same value."""
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return {}
    study = rebuild(space, complete, maximize=maximize)
    with quiet():
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    return {path: float(value) for path, value in found.items()}
