"""A sweep's trials as the driver and the views read them: each seed's figure at a rung, and
the trials as Optuna records (their rung means as intermediate values) for a rebuilt study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from core.store.sweep_tables import Sweep, SweepTrial
from core.sweeps import study


class Run(Protocol):
    """A run as these read it: an experiment row, or the driver's narrow one."""

    @property
    def id(self) -> str: ...


def figures(
    runs: Sequence[tuple[Any, Run]], rungs: dict[str, list[Any]], objective: str, index: int
) -> dict[int, float]:
    """Per seed, the objective at rung `index` (0-based) of each run that has reported it."""
    found: dict[int, float] = {}
    for run, experiment in runs:
        rows = rungs.get(experiment.id, [])
        value = rows[index].value(objective) if len(rows) > index else None
        if value is not None:
            found[run.seed] = value
    return found


def records(
    trials: list[SweepTrial], runs: Mapping[int, Sequence[tuple[Any, Run]]],
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
