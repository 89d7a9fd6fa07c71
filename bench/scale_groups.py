"""The ablations and the sweep of the scale benchmark's store (bench/scale_store.py).

- One ablation of 50 arms x 5 seeds (learning rate x hidden width on seed-adam), its arms
  planned and validated by the service's own planner (api/services/ablation_plan.py). The API
  bounds an ablation at 200 runs (core/submissions.py MAX_EXPERIMENTS), so this 250-run one is
  bigger than any it makes today: the summary's worst case.
- 999 small ones (2 arms x 2 seeds) over the team's ordinary succeeded runs, as ablations
  that reused identical runs would be; 1,000 in all.
- One 200-trial sweep (TPE over learning rate and width, median pruner, 3 rungs, one seed),
  planned by the service's sweep planner, its trials stored with core/store/sweeps.py: about
  six in ten complete, the rest pruned at a rung, each with its run and rung figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, insert, update

from api.services.ablation_plan import Plan, build_plan
from api.services.sweep_plan import SweepPlan, SweepRequest, store_sweep
from api.services.sweep_plan import build_plan as build_sweep_plan
from bench import scale_data as data
from core.cost import CostLimits
from core.settings import Settings
from core.store import sweeps as sweep_store
from core.store.models import Ablation, AblationMember
from core.store.session import session_scope
from core.store.sweep_tables import ExperimentRung, Sweep, SweepTrial
from core.submissions import AblationRequest
from core.sweeps.space import apply_params

ABLATIONS = 1_000
BIG_SEEDS = 5
SWEEP_TRIALS = 200
_ABLATIONS: Table = Ablation.__table__  # type: ignore[attr-defined]
_MEMBERS: Table = AblationMember.__table__  # type: ignore[attr-defined]
_RUNGS: Table = ExperimentRung.__table__  # type: ignore[attr-defined]
_TRIALS: Table = SweepTrial.__table__  # type: ignore[attr-defined]
_SWEEPS: Table = Sweep.__table__  # type: ignore[attr-defined]

ADAM = data.full_spec("seed-adam")
BIG_REQUEST: dict[str, Any] = {
    "name": "lr x width",
    "preset": "seed-adam",
    "overrides": {"epochs": 1, "train_limit": 3000},
    "factors": {
        "lr": [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05],
        "model.hidden": [[50], [100], [200], [300], [400]],
    },
    "seeds": BIG_SEEDS,
}
SWEEP_REQUEST: dict[str, Any] = {
    "name": "adam lr x width",
    "preset": "seed-adam",
    "overrides": {"epochs": 1, "train_limit": 3000},
    "space": {
        "lr": {"type": "log_uniform", "low": 0.0001, "high": 0.1},
        "model.hidden": {"type": "choice", "values": [[50], [100], [200], [400]]},
    },
    "seeds": 1,
    "sampler": "tpe",
    "pruner": "median",
    "max_trials": SWEEP_TRIALS,
    "rungs": 3,
    "sampler_seed": 7,
}


@dataclass(frozen=True)
class TrialPlan:
    params: dict[str, Any]  # spec values
    pruned_at: int | None  # the rung it was pruned at; None: complete
    run_id: str
    value: float  # its validation accuracy
    steps: int


@dataclass
class Groups:
    ablation: Plan
    sweep: SweepPlan
    sweep_request: SweepRequest
    trials: list[TrialPlan] = field(default_factory=list)
    cells: list[tuple[int, int, str]] = field(default_factory=list)  # arm, seed, experiment

    @property
    def runs(self) -> int:
        return len(self.ablation.arms) * BIG_SEEDS + SWEEP_TRIALS

    def runs_to_write(
        self, rng: np.random.Generator, now: datetime, who: data.Who
    ) -> list[data.Run]:
        """The big ablation's and the sweep's runs (all ended), made two months and three
        weeks ago."""
        made: list[data.Run] = []
        for arm in self.ablation.arms:
            shape = data.shape_of(arm.preset or "seed-adam", arm.spec, BIG_SEEDS)
            for seed in range(BIG_SEEDS):
                created = now - timedelta(days=60, minutes=len(made))
                run = data.make_run(rng, shape, seed, created, who, status="succeeded",
                                    tags=["ablation", "lr x width"])  # fmt: skip
                self.cells.append((arm.index, seed, run.row["id"]))
                made.append(run)
        for number in range(SWEEP_TRIALS):
            params = {
                "lr": float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-1)))),
                "model.hidden": [[50], [100], [200], [400]][int(rng.integers(4))],
            }
            shape = data.shape_of("seed-adam", apply_params(self.sweep.base, params), 1)
            pruned_at = None if rng.random() < 0.6 else int(rng.integers(2))
            status = "succeeded" if pruned_at is None else "cancelled"
            created = now - timedelta(days=21, minutes=-number)
            run = data.make_run(rng, shape, 0, created, who, status=status)
            accuracy = float(rng.uniform(0.8, 0.97))
            if run.row["metrics"] is not None:
                run.row["metrics"].update(validation_accuracy=accuracy,
                                          validation_loss=1 - accuracy)  # fmt: skip
            self.trials.append(
                TrialPlan(params, pruned_at, run.row["id"], accuracy, shape.total_steps)
            )
            made.append(run)
        return made


def plan_groups(rng: np.random.Generator) -> Groups:
    limits = CostLimits.from_settings(Settings())
    # Planned (arms validated and priced) at one seed: the API's bound is on arms x seeds.
    one_seed = AblationRequest.model_validate({**BIG_REQUEST, "seeds": 1})
    sweep_request = SweepRequest.model_validate(SWEEP_REQUEST)
    return Groups(build_plan(one_seed, limits), build_sweep_plan(sweep_request, limits),
                  sweep_request)  # fmt: skip


def add_ablations(
    engine: Engine,
    rng: np.random.Generator,
    groups: Groups,
    finished: list[tuple[str, int]],
    who: data.Who,
) -> str:
    """The big ablation, then 999 small ones over `finished` (id, seed) runs; the big one's id."""
    by_seed: dict[int, list[str]] = {}
    for run_id, seed in finished:
        by_seed.setdefault(seed, []).append(run_id)
    ablations: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    big_id = data.new_id(rng)
    big = groups.ablation
    ablations.append(_ablation_row(big_id, BIG_REQUEST, [a.as_dict() for a in big.arms],
                                   list(range(BIG_SEEDS)), who, 60))  # fmt: skip
    members += [_member(big_id, arm, seed, run) for arm, seed, run in groups.cells]
    for k in range(ABLATIONS - 1):
        seeds = sorted(int(s) for s in rng.choice(sorted(by_seed), 2, replace=False))
        ablation_id = data.new_id(rng)
        lrs = [0.001, 0.003]
        arms = [
            {"index": i, "label": f"lr={lr}", "preset": "seed-adam", "overrides": {"lr": lr},
             "spec": {**ADAM, "lr": lr}} for i, lr in enumerate(lrs)
        ]  # fmt: skip
        request = {"name": f"check {k}", "preset": "seed-adam", "factors": {"lr": lrs},
                   "seeds": seeds}  # fmt: skip
        ablations.append(_ablation_row(ablation_id, request, arms, seeds, who, 365 * k / ABLATIONS))
        for arm in range(2):
            for seed in seeds:
                pool = by_seed[seed]
                members.append(_member(ablation_id, arm, seed, pool[int(rng.integers(len(pool)))]))
    with engine.begin() as connection:
        connection.execute(insert(_ABLATIONS), ablations)
        connection.execute(insert(_MEMBERS), members)
    return big_id


def _ablation_row(
    ablation_id: str, request: dict[str, Any], arms: list[dict[str, Any]], seeds: list[int],
    who: data.Who, days_ago: float,
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": ablation_id, "name": request.get("name"), "design": "grid", "request": request,
        "arms": arms, "seeds": seeds, "owner": who.owner, "idempotency_key": None,
        "created_at": data.now_utc() - timedelta(days=days_ago),
    }  # fmt: skip


def _member(ablation_id: str, arm: int, seed: int, experiment_id: str) -> dict[str, Any]:
    return {"ablation_id": ablation_id, "arm": arm, "seed": seed, "experiment_id": experiment_id}


REASON = "optuna median pruner on the seeds' mean"
FRACTIONS = (1 / 9, 1 / 3, 1.0)


def add_sweep(engine: Engine, groups: Groups, who: data.Who) -> str:
    """The sweep and its trials (through core/store/sweeps.py), then their outcomes and rung
    figures; the sweep's id."""
    with session_scope(engine) as session:
        sweep = store_sweep(
            session, groups.sweep_request, groups.sweep, owner=who.owner, key_id=who.key_id
        )
        for number, trial in enumerate(groups.trials):
            optuna = {**trial.params, "model.hidden": str(trial.params["model.hidden"])}
            runs = [(0, trial.run_id)]
            sweep_store.add_trial(session, sweep, number, trial.params, optuna, {}, runs)
        sweep_id = sweep.id
        ended = data.now_utc() - timedelta(days=20)
        finish = update(_SWEEPS).where(_SWEEPS.c.id == sweep_id)
        session.execute(finish.values(status="succeeded", finished_at=ended))
    with engine.begin() as connection:
        connection.execute(insert(_RUNGS), [r for t in groups.trials for r in _rungs(t)])
        for number, trial in enumerate(groups.trials):
            connection.execute(
                update(_TRIALS)
                .where(_TRIALS.c.sweep_id == sweep_id, _TRIALS.c.number == number)
                .values(**_outcome(trial), finished_at=ended)
            )
    return sweep_id


def _rungs(trial: TrialPlan) -> list[dict[str, Any]]:
    """The rung figures its run reported: every rung, or up to the one it was pruned at."""
    reached = len(FRACTIONS) if trial.pruned_at is None else trial.pruned_at + 1
    rows = []
    for k in range(reached):
        accuracy = trial.value - 0.05 * (len(FRACTIONS) - 1 - k)
        rows.append({
            "experiment_id": trial.run_id, "step": int(trial.steps * FRACTIONS[k]),
            "fraction": FRACTIONS[k], "validation_accuracy": accuracy,
            "validation_loss": 1 - accuracy,
        })  # fmt: skip
    return rows


def _outcome(trial: TrialPlan) -> dict[str, Any]:
    pruned = trial.pruned_at is not None
    judged = len(FRACTIONS) - 1 if trial.pruned_at is None else trial.pruned_at + 1
    decisions = [
        {"rung": k, "prune": k == trial.pruned_at, "reason": REASON} for k in range(judged)
    ]
    return {
        "state": "pruned" if pruned else "complete",
        "judged": judged,
        "rung": trial.pruned_at,
        "decisions": decisions,
        "value": None if pruned else trial.value,
        "reason": REASON if pruned else None,
    }
