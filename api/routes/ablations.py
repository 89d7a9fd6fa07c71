"""Ablations over HTTP: create (reusing identical runs), list, inspect, cancel, summarize
with paired statistics, and one mean-with-band curve per arm. Handlers parse, call
api/services (ablation_plan, ablation_views) and the store, and shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlmodel import Session

from api.deps import DispatcherDep, SessionDep, SettingsDep
from api.errors import invalid
from api.routes.params import AblationId, Cursor
from api.schemas import BODY_REQUIRED, DATABASE_DOWN, ERROR_RESPONSES, INVALID, NoFields
from api.services import ablation_views
from api.services.ablation_plan import MAX_EXPERIMENTS, AblationRequest, build_plan, store_plan
from core import store
from core.cost import CostLimits
from core.store.models import TERMINAL, Ablation

router = APIRouter(tags=["ablations"])

# An ablation has at most as many arms as it has runs (at least one seed each).
MAX_ARMS = MAX_EXPERIMENTS


def _load(session: Session, ablation_id: str) -> tuple[Ablation, ablation_views.Members]:
    ablation = store.require_ablation(session, ablation_id)
    members = store.members_with_experiments(session, [ablation_id])[ablation_id]
    return ablation, members


@router.post("/ablations", status_code=201, responses={**INVALID, **DATABASE_DOWN})
def create_ablation(
    request: AblationRequest,
    session: SessionDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """A grid of factors on a base (or the book's five-recipe chain) times seeds. Identical
    spec+seed runs already stored (and not failed or cancelled) are reused, not rerun. Refused
    (422) when a run, or all the runs together, would pass the server's cost bounds; `cost`
    in the answer is the estimate for all its runs."""
    plan = build_plan(request, CostLimits.from_settings(settings))
    ablation, created = store_plan(session, request, plan)
    session.commit()
    # After the commit: a worker that picks a message up must find its experiment. A send
    # that fails leaves the experiment undispatched, and the reaper sends it later.
    dispatcher.dispatch_all(created)
    ablation, members = _load(session, ablation.id)
    response.headers["Location"] = f"/ablations/{ablation.id}"
    view = ablation_views.ablation_view(ablation, members, full=True)
    view["created_experiments"] = len(created)
    view["reused_experiments"] = len({e.id for _, e in members} - set(created))
    view["cost"] = plan.cost.as_dict()
    return view


@router.get("/ablations", responses={**INVALID, **DATABASE_DOWN})
def list_ablations(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Newest first, with status counts and progress per ablation."""
    page, next_cursor = store.list_ablations(session, limit=limit, cursor=cursor)
    members = store.members_with_experiments(session, [a.id for a in page])
    items = [ablation_views.ablation_view(a, members[a.id], full=False) for a in page]
    return {"items": items, "next_cursor": next_cursor}


@router.get("/ablations/{ablation_id}", responses=ERROR_RESPONSES)
def get_ablation(ablation_id: AblationId, session: SessionDep) -> dict[str, Any]:
    ablation, members = _load(session, ablation_id)
    return ablation_views.ablation_view(ablation, members, full=True)


@router.post(
    "/ablations/{ablation_id}/cancel", responses=ERROR_RESPONSES, openapi_extra=BODY_REQUIRED
)
def cancel_ablation(
    ablation_id: AblationId,
    session: SessionDep,
    _body: Annotated[NoFields, Body()] = NoFields(),
) -> dict[str, Any]:
    """Cancel every member that has not finished, except runs another ablation shares (an
    identical spec and seed is one experiment): cancelling those would break that ablation
    too, so they go on and are reported in `kept_shared`."""
    _, members = _load(session, ablation_id)
    unfinished = {e.id for _, e in members if e.status not in TERMINAL}
    shared = store.shared_elsewhere(session, ablation_id, unfinished)
    cancelled = 0
    for experiment_id in sorted(unfinished - shared):
        try:
            store.request_cancel(session, experiment_id)
            cancelled += 1
        except store.AlreadyFinished:
            pass  # it finished between the read and the cancel: nothing to stop
    session.commit()
    ablation, members = _load(session, ablation_id)
    view = ablation_views.ablation_view(ablation, members, full=True)
    view["cancel_requested"] = cancelled
    view["kept_shared"] = sorted(shared)
    return view


@router.get("/ablations/{ablation_id}/summary", responses={**ERROR_RESPONSES, **INVALID})
def ablation_summary(
    ablation_id: AblationId,
    session: SessionDep,
    reference: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_ARMS - 1,
            description="Index of the reference arm (422 past the ablation's last arm).",
        ),
    ] = 0,
) -> dict[str, Any]:
    """Per arm: n, test-accuracy mean, std and 95% t-interval, final-loss mean; and the paired
    difference in accuracy to the reference arm with its 95% CI and p-value (paired t-test
    over the seeds both arms finished). Only succeeded runs count."""
    ablation, members = _load(session, ablation_id)
    if reference >= len(ablation.arms):
        invalid(
            "reference",
            f"arm {reference} does not exist; this ablation has arms 0..{len(ablation.arms) - 1}",
        )
    return ablation_views.summary(ablation, members, reference)


@router.get("/ablations/{ablation_id}/curves", responses=ERROR_RESPONSES)
def ablation_curves(
    ablation_id: AblationId,
    session: SessionDep,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 500,
    smoothing: Annotated[float, Query(ge=0.0, le=0.999)] = 0.0,
) -> dict[str, Any]:
    """One curve per arm on shared steps: the mean over its seeds, with the min/max band."""
    ablation, members = _load(session, ablation_id)
    return ablation_views.mean_curves(
        session, ablation, members, max_points=max_points, smoothing=smoothing
    )
