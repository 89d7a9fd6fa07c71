"""Ablations over HTTP: create (reusing identical runs), list, inspect, cancel, summarize
with paired statistics (against a reference arm or arm by arm along a chain), and one
mean-with-band curve per arm; the summary and the curves also as CSV. Handlers parse, call
api/services (ablation_plan, ablation_views, csv_export) and the store, and shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.auth import Member, QuotasDep, ensure_can_change
from api.deps import DispatcherDep, SessionDep, SettingsDep
from api.http import csv_response
from api.routes.params import AblationId, Cursor, idempotency_header
from api.schemas import (
    BODY_REQUIRED,
    CONFLICT,
    DATABASE_DOWN,
    ERROR_RESPONSES,
    INVALID,
    AblationPublic,
    NoFields,
)
from api.services import ablation_views, admission, csv_export, summary_cache
from api.services.ablation_plan import build_plan, store_plan
from api.services.ablation_summary import CompareMode
from core.cost import CostLimits
from core.errors import invalid
from core.store import ablations, experiments, quotas
from core.store.errors import AlreadyFinished
from core.store.models import TERMINAL, Ablation
from core.submissions import MAX_EXPERIMENTS, AblationRequest

router = APIRouter(tags=["ablations"])

IdempotencyKey = Annotated[str | None, idempotency_header("ablation")]

# An ablation has at most as many arms as it has runs (at least one seed each).
MAX_ARMS = MAX_EXPERIMENTS


def _load(session: Session, ablation_id: str) -> tuple[Ablation, ablation_views.Members]:
    ablation = ablations.require_ablation(session, ablation_id)
    members = ablations.members_with_experiments(session, [ablation_id])[ablation_id]
    return ablation, members


@router.post(
    "/ablations",
    status_code=201,
    responses={201: {"model": AblationPublic}, **INVALID, **DATABASE_DOWN, **CONFLICT},
)
def create_ablation(
    request: AblationRequest,
    session: SessionDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    principal: Member,
    limits: QuotasDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """A grid of factors on a base (or the book's five-recipe chain) times seeds. The
    caller's own runs of an identical spec+seed (not failed or cancelled) are reused, not
    rerun; another account's are run again, so no one's run is held by another's ablation. Refused
    (422) when a run, or all the runs together, would pass the server's cost bounds; `cost`
    in the answer is the estimate for all its runs. The new runs are the caller's, counted
    against its key's quotas (429 over one, or over the largest ablation it may start). A retry
    with the same Idempotency-Key answers the same ablation and makes and counts nothing."""
    plan = build_plan(request, CostLimits.from_settings(settings))
    if idempotency_key is not None:
        replayed = _replay(session, idempotency_key, principal.name, request, response)
        if replayed is not None:
            return {**replayed, "cost": plan.cost.as_dict()}
    if principal.key_id is not None:
        quotas.check_ablation_size(limits, len(plan.cells))
    admission.open_admission(session, principal)
    try:
        ablation, created = store_plan(
            session,
            request,
            plan,
            owner=principal.name,
            owned=lambda cpu_hours: admission.owner_fields(principal, cpu_hours),
            idempotency_key=idempotency_key,
        )
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A retry with the same key committed first: this one's runs go, its answer is that one.
        session.rollback()
        replayed = _replay(session, idempotency_key, principal.name, request, response)
        if replayed is None:
            raise
        return {**replayed, "cost": plan.cost.as_dict()}
    admission.settle(session, principal, limits, created)
    session.commit()
    # After the commit: a worker that picks a message up must find its experiment. A send
    # that fails leaves the experiment undispatched, and the reaper sends it later.
    created_ids = [e.id for e in created]
    dispatcher.dispatch_all(created_ids)
    ablation, members = _load(session, ablation.id)
    response.headers["Location"] = f"/ablations/{ablation.id}"
    view = ablation_views.ablation_view(ablation, members, full=True)
    view["created_experiments"] = len(created_ids)
    view["reused_experiments"] = len({e.id for _, e in members} - set(created_ids))
    view["cost"] = plan.cost.as_dict()
    return view


def _replay(
    session: Session,
    key: str,
    owner: str | None,
    request: AblationRequest,
    response: Response,
) -> dict[str, Any] | None:
    """The answer for a POST whose Idempotency-Key made an ablation before: that ablation,
    nothing created; None when the key is new."""
    found = ablations.ablation_by_idempotency_key(session, key, owner, request.stored())
    if found is None:
        return None
    ablation, members = _load(session, found.id)
    response.headers["Location"] = f"/ablations/{ablation.id}"
    response.headers["Idempotent-Replayed"] = "true"
    view = ablation_views.ablation_view(ablation, members, full=True)
    view["created_experiments"] = 0
    view["reused_experiments"] = len({e.id for _, e in members})
    return view


@router.get("/ablations", responses={**INVALID, **DATABASE_DOWN})
def list_ablations(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Newest first, with status counts and progress per ablation."""
    page, next_cursor = ablations.list_ablations(session, limit=limit, cursor=cursor)
    members = ablations.members_with_experiments(session, [a.id for a in page])
    items = [ablation_views.ablation_view(a, members[a.id], full=False) for a in page]
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/ablations/{ablation_id}", responses={200: {"model": AblationPublic}, **ERROR_RESPONSES}
)
def get_ablation(ablation_id: AblationId, session: SessionDep) -> dict[str, Any]:
    ablation, members = _load(session, ablation_id)
    return ablation_views.ablation_view(ablation, members, full=True)


@router.post(
    "/ablations/{ablation_id}/cancel", responses=ERROR_RESPONSES, openapi_extra=BODY_REQUIRED
)
def cancel_ablation(
    ablation_id: AblationId,
    session: SessionDep,
    principal: Member,
    _body: Annotated[NoFields, Body()] = NoFields(),
) -> dict[str, Any]:
    """Cancel every member that has not finished, except runs another ablation shares (an
    identical spec and seed is one experiment) or that another account made (reused here):
    cancelling those would break what they belong to, so they go on and are reported in
    `kept_shared`. Only the ablation's owner, or an admin, may cancel it."""
    ablation, members = _load(session, ablation_id)
    ensure_can_change(principal, ablation.owner, f"ablation {ablation_id}")
    unfinished = {e.id for _, e in members if e.status not in TERMINAL}
    shared = ablations.shared_elsewhere(session, ablation_id, unfinished) | {
        e.id for _, e in members if e.id in unfinished and e.owner != ablation.owner
    }
    cancelled = 0
    for experiment_id in sorted(unfinished - shared):
        try:
            experiments.request_cancel(session, experiment_id)
            cancelled += 1
        except AlreadyFinished:
            pass  # it finished between the read and the cancel: nothing to stop
    session.commit()
    ablation, members = _load(session, ablation_id)
    view = ablation_views.ablation_view(ablation, members, full=True)
    view["cancel_requested"] = cancelled
    view["kept_shared"] = sorted(shared)
    return view


CompareQuery = Annotated[
    CompareMode,
    Query(
        description="`reference`: every arm against the reference arm; `successive`: arm k "
        "against arm k-1 (for chains where each arm changes one knob of the one before)."
    ),
]
ReferenceQuery = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_ARMS - 1,
        description="Index of the reference arm (compare=reference; 0). 422 past the last arm.",
    ),
]


def _summary(
    session: Session, ablation_id: str, compare: CompareMode, reference: int | None
) -> dict[str, Any]:
    ablation = ablations.require_ablation(session, ablation_id)
    if compare == "successive" and reference is not None:
        invalid("reference", "a reference arm applies only with compare=reference")
    if reference is not None and reference >= len(ablation.arms):
        invalid(
            "reference",
            f"arm {reference} does not exist; this ablation has arms 0..{len(ablation.arms) - 1}",
        )
    states = ablations.member_states(session, ablation_id)
    return summary_cache.summary(
        session, ablation, states, compare=compare, reference=reference or 0
    )


@router.get("/ablations/{ablation_id}/summary", responses={**ERROR_RESPONSES, **INVALID})
def ablation_summary(
    ablation_id: AblationId,
    session: SessionDep,
    compare: CompareQuery = "reference",
    reference: ReferenceQuery = None,
) -> dict[str, Any]:
    """Per arm: n, test-accuracy mean, std and 95% t-interval, final-loss mean, and its loss
    function. `comparisons`: per pair of arms (each against the reference, or against the arm
    before), the paired difference in accuracy (paired t-test over the seeds both finished)
    with its 95% CI, p-value, Holm-adjusted p-value across the comparisons (`p_holm`), Cohen's
    d_z (mean over sd of the per-seed differences) and the seeds a paired t-test needs to
    detect that d_z at 80% power (two-sided, alpha 0.05); the same for final loss, only
    between arms with the same loss function (else null, with `final_loss_note`); and, for
    pairs sharing fewer than 3 seeds, a per-record analysis of each shared seed's two runs
    (`records`: McNemar's exact test and a bootstrap interval). Only succeeded runs count.
    Kept from before: `arms[].diff_to_reference` (reference mode; `diff_to_previous` in
    successive mode), `reference`, `test`, `method`."""
    return _summary(session, ablation_id, compare, reference)


@router.get(
    "/ablations/{ablation_id}/summary.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per arm."},
        **ERROR_RESPONSES,
        **INVALID,
    },
)
def ablation_summary_csv(
    ablation_id: AblationId,
    session: SessionDep,
    compare: CompareQuery = "reference",
    reference: ReferenceQuery = None,
) -> Response:
    """The summary as CSV, one row per arm: its statistics, then its comparison."""
    summary = _summary(session, ablation_id, compare, reference)
    text = csv_export.summary_csv(summary)
    return csv_response.attachment(text, f"ablation-{ablation_id}-summary-{compare}.csv")


MaxPointsQuery = Annotated[int, Query(ge=10, le=100_000)]
SmoothingQuery = Annotated[float, Query(ge=0.0, le=0.999)]


@router.get("/ablations/{ablation_id}/curves", responses=ERROR_RESPONSES)
def ablation_curves(
    ablation_id: AblationId,
    session: SessionDep,
    max_points: MaxPointsQuery = 500,
    smoothing: SmoothingQuery = 0.0,
) -> dict[str, Any]:
    """One curve per arm on shared steps: the mean over its seeds, with the min/max band."""
    ablation, members = _load(session, ablation_id)
    return ablation_views.mean_curves(
        session, ablation, members, max_points=max_points, smoothing=smoothing
    )


@router.get(
    "/ablations/{ablation_id}/curves.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "arm,label,seeds,step,..."},
        **ERROR_RESPONSES,
    },
)
def ablation_curves_csv(
    ablation_id: AblationId,
    session: SessionDep,
    max_points: MaxPointsQuery = 100_000,
    smoothing: SmoothingQuery = 0.0,
) -> Response:
    """The arm curves as CSV, one row per (arm, step): mean loss over seeds, min, max."""
    ablation, members = _load(session, ablation_id)
    curves = ablation_views.mean_curves(
        session, ablation, members, max_points=max_points, smoothing=smoothing
    )
    text = csv_export.arm_curves_csv(curves)
    return csv_response.attachment(text, f"ablation-{ablation_id}-curves.csv")
