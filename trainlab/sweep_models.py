"""The sweep answers, as pydantic models. The server has no schema for them in /openapi.json
(its sweep routes answer plain objects), so these type what the client and the CLI read and
keep the rest (extra="allow"); the request bodies are checked against the server's
SweepRequest and ConfirmRequest schemas instead (tests/client/test_sweeps.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SWEEP_ENDED = frozenset({"succeeded", "cancelled", "failed"})
TRIAL_ENDED = frozenset({"pruned", "complete", "failed"})


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TrialRun(_Loose):
    """One seed's run of a trial, with its validation figures at each rung it reached."""

    seed: int
    experiment_id: str
    status: str
    step: int
    rungs: list[dict[str, Any]] = Field(default_factory=list)


class Trial(_Loose):
    number: int
    params: dict[str, Any]
    state: str
    value: float | None
    pruned_at_rung: int | None
    reason: str | None
    runs: list[TrialRun] = Field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.state in TRIAL_ENDED


class SweepBudget(_Loose):
    trials: int
    steps: int
    steps_if_full: int
    cpu_seconds: float
    cpu_seconds_if_full: float


class Sweep(_Loose):
    """A sweep: POST /sweeps, GET /sweeps/{id}, its cancel answer, and (without space, base
    and trials) an item of GET /sweeps. No figure in it reads the test set: a classifier's
    are on its validation split, a GAN's are its judge's over its samples."""

    id: str
    name: str | None
    status: str
    owner: str | None = None
    sampler: str
    pruner: str
    objective: str
    maximize: bool = True  # which way the objective is better
    objective_label: str | None = None
    figures: str
    max_trials: int
    parallel: int
    seeds: list[int]
    rungs: list[float]
    note: str | None = None
    trial_counts: dict[str, int]
    best: dict[str, Any] | None
    confirm_ablation_id: str | None = None
    budget: SweepBudget
    space: dict[str, Any] | None = None
    base: dict[str, Any] | None = None
    trials: list[Trial] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in SWEEP_ENDED

    @property
    def ended_trials(self) -> int:
        return sum(n for state, n in self.trial_counts.items() if state in TRIAL_ENDED)


class SweepPage(_Loose):
    items: list[Sweep]
    next_cursor: str | None


class SweepDeleted(_Loose):
    deleted: str
    experiments_removed: int


class SweepImportance(_Loose):
    objective: str
    importances: dict[str, float]


class SweepConfirmation(_Loose):
    """POST /sweeps/{id}/confirm: the ablation that runs the base and the best trials on fresh
    seeds, on the test set."""

    sweep_id: str
    ablation_id: str
    arms: list[dict[str, Any]]
    seeds: list[int]
    figures: str
    summary: str
