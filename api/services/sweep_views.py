"""What the sweep endpoints answer: the sweep with its trials, rungs, budget and best trial;
the trials as CSV; and the confirmation ablation's plan (base + best trials, fresh seeds)."""

from __future__ import annotations

import csv
import functools
import io
import math
from typing import Any, cast

from scipy import stats as sps
from sqlmodel import Session

from api.background.sweep_records import records
from api.services.ablation_plan import Arm, Cell, Plan, PlanError
from core import kinds
from core.cost import CostLimits, ablation_total, ablation_violations, estimate
from core.kinds import AnySpec
from core.store import experiments, sweep_reads
from core.store import sweeps as sweep_store
from core.store.sweep_tables import Sweep
from core.submissions import AblationRequest, SummaryMetric
from core.sweeps import study
from core.sweeps.objectives import label as objective_label
from core.sweeps.objectives import maximizes
from core.sweeps.space import apply_params

CONFIDENCE = 0.95


def interval(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n if n else None
    if n < 2 or mean is None:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t_quantile(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


@functools.lru_cache(maxsize=256)
def _t_quantile(df: int) -> float:
    """The t quantile of the interval for `df` degrees of freedom: the same few for every
    trial of a sweep (its seeds), each a SciPy call of about a millisecond."""
    return float(sps.t.ppf(0.5 + CONFIDENCE / 2, df))


def trial_records(session: Session, sweep: Sweep) -> list[study.TrialRecord]:
    runs = sweep_store.runs_with_experiments(session, sweep.id)
    rungs = sweep_reads.rungs(session, [e.id for m in runs.values() for _, e in m])
    return records(sweep_store.trials(session, sweep.id), runs, rungs, sweep)


def sweep_view(session: Session, sweep: Sweep, *, full: bool) -> dict[str, Any]:
    """The sweep as GET /sweeps/{id} shows it (`full`: with its space, base and trials).
    Narrow reads (core/store/sweep_reads.py): each run's price and length as stored when it
    was made, and of the runs of complete trials only the objective in their metrics."""
    trials = sweep_reads.trials(session, sweep.id)
    runs = sweep_reads.runs(session, sweep.id)
    rungs = sweep_reads.rungs(session, [r.experiment_id for m in runs.values() for r in m])
    finished = {t.number for t in trials if t.state == "complete" and t.value is not None}
    figures = experiments.figure_of(
        session, [r.experiment_id for n in finished for r in runs.get(n, [])], sweep.objective
    )
    prices = _prices(session, [r for m in runs.values() for r in m])
    steps_used = steps_full = 0
    cpu_used = cpu_full = 0.0
    items: list[dict[str, Any]] = []
    for trial in trials:
        members = runs.get(trial.number, [])
        per_seed = []
        for run in members:
            total, full_cpu = prices[run.experiment_id]
            steps_used += run.step
            steps_full += total
            cpu_full += full_cpu
            cpu_used += full_cpu * (run.step / total if total else 0.0)
            per_seed.append({
                "seed": run.seed, "experiment_id": run.experiment_id, "status": run.status,
                "step": run.step,
                "rungs": [_rung(r) for r in rungs.get(run.experiment_id, [])],
            })  # fmt: skip
        item: dict[str, Any] = {
            "number": trial.number, "params": trial.params, "state": trial.state,
            "value": trial.value,
            # The objective's mean and 95% interval over the seeds (the dashboard's band of
            # the best so far); only a complete trial has one.
            "value_interval": (
                interval(_final(members, figures))
                if trial.number in finished else None
            ),
            "pruned_at_rung": trial.rung, "reason": trial.reason,
            "decisions": trial.decisions, "runs": per_seed,
        }  # fmt: skip
        items.append(item)
    complete = [t for t in items if t["value_interval"] is not None]
    maximize = maximizes(sweep.objective)
    best = None
    if complete:
        top = max(complete, key=lambda t: float(t["value"]) * (1 if maximize else -1))
        best = {"number": top["number"], "params": top["params"],
                sweep.objective: top["value_interval"]}  # fmt: skip
    counts: dict[str, int] = {}
    for t in items:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    view: dict[str, Any] = {
        "id": sweep.id, "name": sweep.name, "status": sweep.status, "owner": sweep.owner,
        "created_at": sweep.created_at, "finished_at": sweep.finished_at,
        "sampler": sweep.sampler, "pruner": sweep.pruner, "objective": sweep.objective,
        "maximize": maximize, "objective_label": objective_label(sweep.objective),
        # A classifier's figures are on its validation split, a GAN's are its judge's.
        "figures": "judge" if sweep.base.get("kind") == "gan" else "validation",
        "max_trials": sweep.max_trials, "parallel": sweep.parallel,
        "seeds": sweep.seeds, "rungs": study.rung_fractions(sweep.rungs), "note": sweep.note,
        "trial_counts": counts, "best": best,
        "confirm_ablation_id": sweep.confirm_ablation_id,
        "budget": {
            "trials": len(items), "steps": steps_used, "steps_if_full": steps_full,
            "cpu_seconds": round(cpu_used, 3), "cpu_seconds_if_full": round(cpu_full, 3),
        },
    }  # fmt: skip
    if full:
        view["space"] = sweep.space
        view["base"] = sweep.base
        view["trials"] = items
    return view


def _rung(row: sweep_reads.RungRow) -> dict[str, Any]:
    """A rung's figures: a classifier's validation accuracy and loss, a GAN's judge's."""
    out: dict[str, Any] = {"step": row.step, "fraction": row.fraction}
    if row.validation_accuracy is not None or row.figures is None:
        out["validation_accuracy"] = row.validation_accuracy
        out["validation_loss"] = row.validation_loss
    return {**out, **(row.figures or {})}


def _final(members: list[sweep_reads.RunRow], figures: dict[str, float]) -> list[float]:
    """Each seed's final validation figure (the objective in the run's metrics)."""
    return [figures.get(r.experiment_id, math.nan) for r in members]


def _prices(session: Session, runs: list[sweep_reads.RunRow]) -> dict[str, tuple[int, float]]:
    """Each run's length in steps and the cost model's CPU-seconds for all of it, from what
    was stored when it was made; a run stored without them (made before runs were priced)
    has its spec validated and priced here, as every run's once was."""
    found: dict[str, tuple[int, float]] = {}
    unpriced = [r for r in runs if r.cost_hours <= 0 or not (r.total_steps or r.planned_steps)]
    specs = experiments.specs_of(session, [r.experiment_id for r in unpriced])
    for run in runs:
        total = run.total_steps or run.planned_steps
        cpu_seconds = run.cost_hours * 3600
        if run.cost_hours <= 0 or not total:
            spec = cast(AnySpec, kinds.parse(specs[run.experiment_id]))
            total = total or spec.total_steps
            cpu_seconds = cpu_seconds if run.cost_hours > 0 else estimate(spec).cpu_seconds
        found[run.experiment_id] = (total, cpu_seconds)
    return found


def trials_csv(view: dict[str, Any]) -> str:
    paths = list(view.get("space", {}))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "state", "pruned_at_rung", view["objective"], *paths])
    for t in view.get("trials", []):
        row = [t["number"], t["state"], t["pruned_at_rung"], t["value"]]
        writer.writerow(row + [_cell(t["params"].get(p)) for p in paths])
    return out.getvalue()


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str) or value is None else str(value)


# What a sweep adds to its trials' specs and its confirmation's runs leave out.
_SWEEP_ONLY = ("validation_rungs", "judge_rungs", "evaluate_test")


def confirm_plan(
    session: Session, sweep: Sweep, top: int, seeds: int, limits: CostLimits
) -> tuple[Plan, AblationRequest]:
    """Arm 0 the base recipe, arms 1..k the best complete trials, on seeds after the sweep's."""
    maximize = maximizes(sweep.objective)
    complete = [t for t in sweep_store.trials(session, sweep.id) if t.state == "complete"]
    if not complete:
        raise PlanError(("top",), "no complete trial yet to confirm")
    complete.sort(key=lambda t: -(t.value or 0.0) if maximize else (t.value or 0.0))
    chosen = complete[:top]
    fresh = list(range(max(sweep.seeds) + 1, max(sweep.seeds) + 1 + seeds))
    # The confirmation is where the test set is read: its runs evaluate on it, with no rungs.
    base = {k: v for k, v in sweep.base.items() if k not in _SWEEP_ONLY}
    configs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [("base", {}, base)] + [
        (f"trial {t.number}", t.params, apply_params(base, t.params)) for t in chosen
    ]
    arms, cells, costs = [], [], []
    for index, (label, params, spec_dict) in enumerate(configs):
        spec = cast(AnySpec, kinds.parse({**spec_dict, "seed": fresh[0]}))
        cost = estimate(spec)
        costs.append((cost, len(fresh)))
        clean = spec.model_dump(mode="json")
        clean.pop("seed")
        arms.append(Arm(index, label, sweep.preset, params, clean))
        for seed in fresh:
            cells.append(
                Cell(
                    index,
                    seed,
                    cast(AnySpec, kinds.parse({**clean, "seed": seed})),
                    sweep.preset,
                    cost.cpu_hours,
                )
            )
    total = ablation_total(costs)
    for problem in ablation_violations(total, limits):
        raise PlanError(("seeds",), f"the confirmation is too big: {problem}")
    # A GAN sweep's confirmation compares the figure the sweep chose on (a classifier's
    # compares test accuracy, the test counterpart of its validation figures).
    gan = sweep.base.get("kind") == "gan"
    request = AblationRequest(
        name=f"sweep-{sweep.id[:8]}-confirm", base=base, seeds=fresh,
        metric=cast(SummaryMetric, sweep.objective) if gan else None,
    )  # fmt: skip
    return Plan("grid", arms, fresh, cells, total), request
