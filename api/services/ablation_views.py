"""What an ablation looks like from outside: its progress and status word, its members, its
summary statistics and its mean curves. Pure functions of what the store returned."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from api.services import curves
from api.services.ablation_summary import ArmResults, CompareMode, RecordsLookup, summarize
from api.services.paired_records import DifferentRecords, compare_runs
from core import kinds
from core.store import artifacts, experiments, series
from core.store.ablations import MemberState
from core.store.clock import as_utc
from core.store.models import (
    TERMINAL,
    TERMINAL_VALUES,
    Ablation,
    AblationMember,
    Experiment,
    Status,
)

Members = list[tuple[AblationMember, Experiment]]


def member_view(member: AblationMember, experiment: Experiment) -> dict[str, Any]:
    metrics = experiment.metrics or {}
    return {
        "arm": member.arm,
        "seed": member.seed,
        "experiment_id": experiment.id,
        "status": experiment.status,
        "step": experiment.step,
        "total_steps": experiments.expected_total_steps(experiment),
        "test_accuracy": metrics.get("test_accuracy"),
        "final_loss": metrics.get("final_loss"),
    }


def overall_status(counts: Counter[str], total: int) -> str:
    """One word for the whole ablation: still going, or how it ended."""
    pending = counts[Status.queued] + counts[Status.running]
    if pending:
        return Status.queued.value if counts[Status.queued] == total else Status.running.value
    if counts[Status.succeeded] == total:
        return Status.succeeded.value
    return Status.failed.value if counts[Status.failed] else Status.cancelled.value


def progress(members: Members) -> tuple[dict[str, int], dict[str, Any], str]:
    """(status counts, progress, overall status) over the members."""
    counts: Counter[str] = Counter(e.status for _, e in members)
    totals = [experiments.expected_total_steps(e) for _, e in members]
    total = sum(totals)
    # A finished run counts as done even when it stopped early (cancelled, failed).
    done = sum(
        t if e.status in TERMINAL else min(e.step, t)
        for (_, e), t in zip(members, totals, strict=True)
    )
    finished = sum(counts[s] for s in TERMINAL)
    summary = {
        "experiments": len(members),
        "finished": finished,
        "step": done,
        "total": total,
        "fraction": round(done / total, 6) if total else (1.0 if finished else 0.0),
    }
    status_counts = {s.value: counts[s.value] for s in Status}
    return status_counts, summary, overall_status(counts, len(members))


def ablation_view(ablation: Ablation, members: Members, *, full: bool) -> dict[str, Any]:
    status_counts, done, status = progress(members)
    view: dict[str, Any] = {
        "id": ablation.id,
        "name": ablation.name,
        "design": ablation.design,
        "owner": ablation.owner,
        "created_at": as_utc(ablation.created_at),
        "status": status,
        "seeds": ablation.seeds,
        "status_counts": status_counts,
        "progress": done,
        "arms": [{"index": a["index"], "label": a["label"]} for a in ablation.arms],
    }
    if full:
        view["request"] = ablation.request
        view["arms"] = ablation.arms
        view["members"] = [member_view(m, e) for m, e in members]
    return view


def arm_results(
    ablation: Ablation, states: Sequence[MemberState], metrics: dict[str, dict[str, Any]]
) -> list[ArmResults]:
    """Per arm, the succeeded runs' figure of the arms' kind (a classifier's test accuracy, a
    GAN's label entropy) and final loss by seed, and the arm's loss function (final losses are
    only comparable between arms that share it)."""
    by_arm: dict[int, list[MemberState]] = {}
    for state in states:
        if state.status == Status.succeeded.value:
            by_arm.setdefault(state.arm, []).append(state)
    results: list[ArmResults] = []
    for arm in ablation.arms:
        spec = arm.get("spec") or {}
        metric = ablation.request.get("metric") or kinds.kind_of_raw(spec).summary_metric
        values: dict[int, float] = {}
        loss: dict[int, float] = {}
        for state in by_arm.get(arm["index"], []):
            figures = metrics.get(state.experiment_id) or {}
            if isinstance(figures.get(metric), int | float):
                values[state.seed] = float(figures[metric])
            if isinstance(figures.get("final_loss"), int | float):
                loss[state.seed] = float(figures["final_loss"])
        loss_function = spec.get("loss")
        results.append(ArmResults(arm["index"], arm["label"], values, loss, loss_function, metric))
    return results


def records_lookup(session: Session, states: Sequence[MemberState]) -> RecordsLookup:
    """The per-record analysis of one seed's runs in two arms, reading each run's stored
    predictions once per request."""
    succeeded = {
        (m.arm, m.seed): m.experiment_id for m in states if m.status == Status.succeeded.value
    }
    blobs: dict[str, artifacts.PredictionsBlob | None] = {}

    def blob(experiment_id: str) -> artifacts.PredictionsBlob | None:
        if experiment_id not in blobs:
            blobs[experiment_id] = artifacts.read_predictions(session, experiment_id)
        return blobs[experiment_id]

    def lookup(arm: int, baseline: int, seed: int) -> dict[str, Any] | None:
        second, first = succeeded.get((arm, seed)), succeeded.get((baseline, seed))
        if first is None or second is None:
            return None
        first_blob, second_blob = blob(first), blob(second)
        if first_blob is None or second_blob is None:
            return None
        try:
            return compare_runs(first, first_blob, second, second_blob)
        except DifferentRecords:
            return None

    return lookup


def summary(
    session: Session,
    ablation: Ablation,
    states: Sequence[MemberState],
    *,
    compare: CompareMode = "reference",
    reference: int = 0,
) -> dict[str, Any]:
    """The paired statistics of the arms (against `reference`, or each against the one
    before), with how many runs each arm expects and how many have finished. Only the
    succeeded members' metrics are read."""
    succeeded = [m.experiment_id for m in states if m.status == Status.succeeded.value]
    result = summarize(
        arm_results(ablation, states, experiments.metrics_of(session, succeeded)),
        reference,
        compare=compare,
        records=records_lookup(session, states),
    )
    result["ablation_id"] = ablation.id
    expected: Counter[int] = Counter(m.arm for m in states)
    finished: Counter[int] = Counter(m.arm for m in states if m.status in TERMINAL_VALUES)
    for row in result["arms"]:
        row["expected"] = expected[row["arm"]]
        row["finished"] = finished[row["arm"]]
    return result


def mean_curves(
    session: Session, ablation: Ablation, members: Members, *, max_points: int, smoothing: float
) -> dict[str, Any]:
    """One curve per arm on shared steps: the mean over its seeds, with the min/max band."""
    rows: list[tuple[Any, Any]] = []
    groups: list[list[int]] = [[] for _ in ablation.arms]
    for member, experiment in members:
        steps, values = series.read_series(session, experiment.id)
        groups[member.arm].append(len(rows))
        rows.append((steps, curves.tensorboard_ema(values, smoothing)))
    aligned = curves.align(rows)
    mean, low, high = curves.group_bands(aligned, groups)
    small, lo, hi = curves.downsample_aligned(
        curves.Aligned(aligned.steps, mean), max_points, lower=low, upper=high
    )
    assert lo is not None and hi is not None
    return {
        "ablation_id": ablation.id,
        "steps": small.steps.tolist(),
        "band": "min/max across seeds",
        "smoothing": smoothing,
        "arms": [
            {
                "arm": arm["index"],
                "label": arm["label"],
                "seeds": len(groups[i]),
                "mean": curves.json_floats(small.values[i]),
                "low": curves.json_floats(lo[i]),
                "high": curves.json_floats(hi[i]),
            }
            for i, arm in enumerate(ablation.arms)
        ],
    }
