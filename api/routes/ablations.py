"""Ablations over HTTP: create (reusing identical runs), list, inspect, cancel, summarize
with paired statistics, and one mean-with-band curve per arm."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from api import compare
from api.ablations import AblationRequest, Plan, PlanError, build_plan
from api.db import ablation_store, store
from api.db.models import TERMINAL, Ablation, AblationMember, Experiment, Status
from api.db.session import as_utc, session_scope
from api.dispatch import dispatch
from api.routes.validation import unprocessable
from api.stats import ArmResults, summarize
from worker.spec import ExperimentSpec

router = APIRouter(tags=["ablations"])

Members = list[tuple[AblationMember, Experiment]]


def _member_view(member: AblationMember, experiment: Experiment) -> dict[str, Any]:
    metrics = experiment.metrics or {}
    return {
        "arm": member.arm,
        "seed": member.seed,
        "experiment_id": experiment.id,
        "status": experiment.status,
        "step": experiment.step,
        "total_steps": _total_steps(experiment),
        "test_accuracy": metrics.get("test_accuracy"),
        "final_loss": metrics.get("final_loss"),
    }


def _overall(counts: Counter[str], total: int) -> str:
    """One word for the whole ablation: still going, or how it ended."""
    pending = counts[Status.queued] + counts[Status.running]
    if pending:
        return Status.queued.value if counts[Status.queued] == total else Status.running.value
    if counts[Status.succeeded] == total:
        return Status.succeeded.value
    return Status.failed.value if counts[Status.failed] else Status.cancelled.value


def _total_steps(experiment: Experiment) -> int:
    if experiment.total_steps:
        return max(experiment.total_steps, experiment.step)
    # Before a worker reports, the spec says how long the run will be.
    try:
        return ExperimentSpec.model_validate(experiment.spec).total_steps
    except ValueError:
        return experiment.step


def _progress(members: Members) -> tuple[dict[str, int], dict[str, Any], str]:
    counts: Counter[str] = Counter(e.status for _, e in members)
    totals = [_total_steps(e) for _, e in members]
    total = sum(totals)
    # A finished run counts as done even when it stopped early (cancelled, failed).
    done = sum(
        t if e.status in TERMINAL else min(e.step, t)
        for (_, e), t in zip(members, totals, strict=True)
    )
    finished = sum(counts[s] for s in TERMINAL)
    progress = {
        "experiments": len(members),
        "finished": finished,
        "step": done,
        "total": total,
        "fraction": round(done / total, 6) if total else (1.0 if finished else 0.0),
    }
    status_counts = {s.value: counts[s.value] for s in Status}
    return status_counts, progress, _overall(counts, len(members))


def _ablation_view(ablation: Ablation, members: Members, *, full: bool) -> dict[str, Any]:
    status_counts, progress, status = _progress(members)
    view: dict[str, Any] = {
        "id": ablation.id,
        "name": ablation.name,
        "design": ablation.design,
        "created_at": as_utc(ablation.created_at),
        "status": status,
        "seeds": ablation.seeds,
        "status_counts": status_counts,
        "progress": progress,
        "arms": [{"index": a["index"], "label": a["label"]} for a in ablation.arms],
    }
    if full:
        view["request"] = ablation.request
        view["arms"] = ablation.arms
        view["members"] = [_member_view(m, e) for m, e in members]
    return view


def _load(ablation_id: str) -> tuple[Ablation, Members]:
    with session_scope() as session:
        ablation = ablation_store.get_ablation(session, ablation_id)
        if ablation is None:
            raise HTTPException(404, f"no ablation with id {ablation_id!r}")
        members = ablation_store.members_with_experiments(session, [ablation_id])[ablation_id]
    return ablation, members


def _store_plan(request: AblationRequest, plan: Plan) -> tuple[Ablation, Members, list[str]]:
    """One transaction: reuse or create every cell's experiment, then the ablation."""
    created: list[str] = []
    with session_scope() as session:
        cells: list[tuple[int, int, str]] = []
        for cell in plan.cells:
            experiment = ablation_store.find_reusable(session, cell.spec)
            if experiment is None:
                tags = ["ablation", *([request.name] if request.name else [])]
                experiment, _ = store.create_experiment(
                    session, cell.spec, name=None, tags=tags, preset=cell.preset
                )
                created.append(experiment.id)
            cells.append((cell.arm, cell.seed, experiment.id))
        ablation = ablation_store.add_ablation(
            session,
            name=request.name,
            design=plan.design,
            request=request.model_dump(mode="json"),
            arms=[arm.as_dict() for arm in plan.arms],
            seeds=plan.seeds,
            members=cells,
        )
        members = ablation_store.members_with_experiments(session, [ablation.id])[ablation.id]
    return ablation, members, created


@router.post("/ablations", status_code=201)
def create_ablation(request: AblationRequest, response: Response) -> dict[str, Any]:
    """A grid of factors on a base (or the book's five-recipe chain) times seeds. Identical
    spec+seed runs already stored (and not failed or cancelled) are reused, not rerun."""
    try:
        plan = build_plan(request)
    except PlanError as exc:
        unprocessable(("body", *exc.loc), exc.message)
    ablation, members, created = _store_plan(request, plan)
    # After the commit: a worker that picks a message up must find its experiment. A send
    # that fails leaves the experiment undispatched, and the reaper sends it later.
    for experiment_id in created:
        dispatch(experiment_id)
    response.headers["Location"] = f"/ablations/{ablation.id}"
    view = _ablation_view(ablation, members, full=True)
    view["created_experiments"] = len(created)
    view["reused_experiments"] = len({e for _, _, e in _cells(members)} - set(created))
    return view


def _cells(members: Members) -> list[tuple[int, int, str]]:
    return [(m.arm, m.seed, e.id) for m, e in members]


@router.get("/ablations")
def list_ablations(
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first, with status counts and progress per ablation."""
    with session_scope() as session:
        try:
            page, next_cursor = ablation_store.list_ablations(session, limit=limit, cursor=cursor)
        except ablation_store.InvalidAblationCursor as exc:
            unprocessable(("query", "cursor"), str(exc), cursor)
        members = ablation_store.members_with_experiments(session, [a.id for a in page])
    items = [_ablation_view(a, members[a.id], full=False) for a in page]
    return {"items": items, "next_cursor": next_cursor}


@router.get("/ablations/{ablation_id}")
def get_ablation(ablation_id: str) -> dict[str, Any]:
    ablation, members = _load(ablation_id)
    return _ablation_view(ablation, members, full=True)


@router.post("/ablations/{ablation_id}/cancel")
def cancel_ablation(ablation_id: str) -> dict[str, Any]:
    """Cancel every member that has not finished, except runs another ablation shares (an
    identical spec and seed is one experiment): cancelling those would break that ablation
    too, so they go on and are reported in `kept_shared`."""
    _, members = _load(ablation_id)
    cancelled = 0
    with session_scope() as session:
        unfinished = {e.id for _, e in members if e.status not in TERMINAL}
        shared = ablation_store.shared_elsewhere(session, ablation_id, unfinished)
        for experiment_id in sorted(unfinished - shared):
            try:
                store.request_cancel(session, experiment_id)
                cancelled += 1
            except store.AlreadyFinished:
                pass  # it finished between the read and the cancel: nothing to stop
    ablation, members = _load(ablation_id)
    view = _ablation_view(ablation, members, full=True)
    view["cancel_requested"] = cancelled
    view["kept_shared"] = sorted(shared)
    return view


@router.get("/ablations/{ablation_id}/summary")
def ablation_summary(
    ablation_id: str,
    reference: Annotated[int, Query(ge=0, description="Index of the reference arm.")] = 0,
) -> dict[str, Any]:
    """Per arm: n, test-accuracy mean, std and 95% t-interval, final-loss mean; and the paired
    difference in accuracy to the reference arm with its 95% CI and p-value (paired t-test
    over the seeds both arms finished). Only succeeded runs count."""
    ablation, members = _load(ablation_id)
    if reference >= len(ablation.arms):
        unprocessable(
            ("query", "reference"),
            f"arm {reference} does not exist; this ablation has arms 0..{len(ablation.arms) - 1}",
            reference,
        )
    results: list[ArmResults] = []
    for arm in ablation.arms:
        accuracy: dict[int, float] = {}
        loss: dict[int, float] = {}
        for member, experiment in members:
            metrics = experiment.metrics or {}
            if member.arm != arm["index"] or experiment.status != Status.succeeded:
                continue
            if isinstance(metrics.get("test_accuracy"), int | float):
                accuracy[member.seed] = float(metrics["test_accuracy"])
            if isinstance(metrics.get("final_loss"), int | float):
                loss[member.seed] = float(metrics["final_loss"])
        results.append(ArmResults(arm["index"], arm["label"], accuracy, loss))
    summary = summarize(results, reference)
    summary["ablation_id"] = ablation.id
    for row in summary["arms"]:
        cells = [e for m, e in members if m.arm == row["arm"]]
        row["expected"] = len(cells)
        row["finished"] = sum(e.status in TERMINAL for e in cells)
    return summary


@router.get("/ablations/{ablation_id}/curves")
def ablation_curves(
    ablation_id: str,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 500,
    smoothing: Annotated[float, Query(ge=0.0, le=0.999)] = 0.0,
) -> dict[str, Any]:
    """One curve per arm on shared steps: the mean over its seeds, with the min/max band."""
    ablation, members = _load(ablation_id)
    rows: list[tuple[Any, Any]] = []
    groups: list[list[int]] = [[] for _ in ablation.arms]
    with session_scope() as session:
        for member, experiment in members:
            steps, values = store.read_series(session, experiment.id)
            groups[member.arm].append(len(rows))
            rows.append((steps, compare.tensorboard_ema(values, smoothing)))
    aligned = compare.align(rows)
    mean, low, high = compare.group_bands(aligned, groups)
    small, lo, hi = compare.downsample_aligned(
        compare.Aligned(aligned.steps, mean), max_points, lower=low, upper=high
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
                "mean": compare.json_floats(small.values[i]),
                "low": compare.json_floats(lo[i]),
                "high": compare.json_floats(hi[i]),
            }
            for i, arm in enumerate(ablation.arms)
        ],
    }
