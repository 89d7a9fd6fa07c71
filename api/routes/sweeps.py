"""Sweeps over HTTP: create (the space checked whole), list, inspect (trials, rungs, budget,
the best so far), cancel, delete, parameter importances, trials as CSV, and confirmation of
the winners on fresh seeds and the test set (an ablation). The driver that runs them is
api/background/sweeps.py; what a sweep's numbers mean is in api/services/sweep_views.py.

The three reads a dashboard polls while a sweep runs (the list, one sweep, its importances)
carry a strong ETag (api/http/etags.py): sent back in If-None-Match, an unchanged answer is a
304 without a body. Their bytes are the ones FastAPI would write for the same object."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.auth import Member, QuotasDep, ensure_can_change
from api.deps import DispatcherDep, SessionDep, SettingsDep
from api.http.csv_response import attachment
from api.http.etags import JSON, NOT_MODIFIED_DOC, conditional_json
from api.routes.params import Cursor, IfNoneMatch, SweepId, idempotency_header
from api.schemas import (
    BODY_REQUIRED,
    CONFLICT,
    DATABASE_DOWN,
    ERROR_RESPONSES,
    INVALID,
    NoFields,
)
from api.services import admission, sweep_views
from api.services.ablation_plan import store_plan
from api.services.sweep_plan import SweepRequest, build_plan, resolve_sweep_judge, store_sweep
from core.cost import CostLimits
from core.store import ablations, errors, experiments, quotas, retention
from core.store import sweeps as sweep_store
from core.store.models import TERMINAL
from core.store.sweep_tables import Sweep
from core.submissions import AblationRequest
from core.sweeps import study
from core.sweeps.objectives import maximizes
from core.sweeps.space import parse_space

router = APIRouter(tags=["sweeps"])

IdempotencyKey = Annotated[str | None, idempotency_header("sweep")]

MAX_CONFIRM_TOP = 5
MAX_CONFIRM_SEEDS = 20

_ANSWER = TypeAdapter(dict[str, Any])
# A plain object, as before these reads were conditional (the client types it: trainlab).
_OBJECT = {
    200: {
        "description": "Successful Response",
        "content": {JSON: {"schema": {"type": "object", "additionalProperties": True}}},
    },
    **NOT_MODIFIED_DOC,
}


def _conditional(answer: dict[str, Any], if_none_match: str | None) -> Response:
    return conditional_json(_ANSWER.dump_json(answer), if_none_match)


def _sweep(session: Session, sweep_id: str) -> Sweep:
    try:
        return sweep_store.require_sweep(session, sweep_id)
    except sweep_store.SweepNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/sweeps", status_code=201, responses={**INVALID, **DATABASE_DOWN, **CONFLICT})
def create_sweep(
    request: SweepRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: Member,
    limits: QuotasDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """A search over `space` on a base (preset or spec, plus overrides): trials asked from
    Optuna's `sampler`, each trained on `seeds` paired seeds, judged at `rungs` geometric
    rungs by `pruner` on the `objective`: a classifier's on a split of `validation_records`
    held out of the training set, a GAN's on its judge's figures over its samples (the judge
    a finished MNIST classifier; the test set unread). 422 naming the field for a bad space
    (an empty range, a log bound <= 0, an unknown field or a numeric type on a non-numeric
    one, duplicate choices), an objective the kind does not report, a costliest trial past
    a run bound, or a sweep past the CPU-hour bound. Its runs count against the key's quotas.
    A retry with the same Idempotency-Key answers the same sweep and starts nothing; the same
    key with a different body is 409."""
    plan = build_plan(request, CostLimits.from_settings(settings))
    if idempotency_key is not None:
        replayed = _replay(session, idempotency_key, principal.name, request, response)
        if replayed is not None:
            return replayed
    if principal.key_id is not None:
        quotas.check_ablation_size(limits, request.max_trials * request.seeds)
    plan = resolve_sweep_judge(session, plan, principal.name)
    try:
        sweep = store_sweep(
            session, request, plan, owner=principal.name, key_id=principal.key_id,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        session.commit()
    except IntegrityError:
        if idempotency_key is None:
            raise
        # A retry with the same key committed first: its sweep is the answer.
        session.rollback()
        replayed = _replay(session, idempotency_key, principal.name, request, response)
        if replayed is None:
            raise
        return replayed
    response.headers["Location"] = f"/sweeps/{sweep.id}"
    return sweep_views.sweep_view(session, sweep, full=True)


def _replay(
    session: Session, key: str, owner: str | None, request: SweepRequest, response: Response
) -> dict[str, Any] | None:
    """The answer for a POST whose Idempotency-Key made a sweep before: that sweep as it is
    now; None when the key is new."""
    found = sweep_store.sweep_by_idempotency_key(
        session, key, owner, request.model_dump(mode="json")
    )
    if found is None:
        return None
    response.headers["Location"] = f"/sweeps/{found.id}"
    response.headers["Idempotent-Replayed"] = "true"
    return sweep_views.sweep_view(session, found, full=True)


@router.get("/sweeps", response_class=Response, responses={**_OBJECT, **INVALID, **DATABASE_DOWN})
def list_sweeps(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Cursor = None,
    status: Annotated[
        str | None, Query(pattern="^(running|cancelling|succeeded|cancelled|failed)$")
    ] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Newest first; filter by status or owner; `next_cursor` pages on. Poll with
    If-None-Match: 304 while nothing listed has changed."""
    page, next_cursor = sweep_store.list_sweeps(
        session, limit=limit, cursor=cursor, status=status, owner=owner
    )
    items = [sweep_views.sweep_view(session, s, full=False) for s in page]
    return _conditional({"items": items, "next_cursor": next_cursor}, if_none_match)


@router.get("/sweeps/{sweep_id}", response_class=Response, responses={**_OBJECT, **ERROR_RESPONSES})
def get_sweep(
    sweep_id: SweepId, session: SessionDep, if_none_match: IfNoneMatch = None
) -> Response:
    """Status, budget used against a full run of every trial, every trial (parameters, state,
    the value with a 95% interval over its seeds, the rung and reason of a prune, per-rung
    validation figures per seed), and the best trial so far with its interval. Every figure
    here is on the validation split; test figures appear only in the confirmation ablation.
    Poll with If-None-Match: 304 while nothing has changed."""
    view = sweep_views.sweep_view(session, _sweep(session, sweep_id), full=True)
    return _conditional(view, if_none_match)


@router.post("/sweeps/{sweep_id}/cancel", responses=ERROR_RESPONSES, openapi_extra=BODY_REQUIRED)
def cancel_sweep(
    sweep_id: SweepId,
    session: SessionDep,
    principal: Member,
    _body: Annotated[NoFields, Body()] = NoFields(),
) -> dict[str, Any]:
    """No new trials; every unfinished run is cancelled, and the sweep ends `cancelled` once
    they have ended (its unfinished trials end `failed`)."""
    sweep = _sweep(session, sweep_id)
    ensure_can_change(principal, sweep.owner, f"sweep {sweep_id}")
    if sweep.status == "running":
        sweep.status = "cancelling"
        session.add(sweep)
        for members in sweep_store.runs_with_experiments(session, sweep_id).values():
            for _, experiment in members:
                if experiment.status not in TERMINAL:
                    with contextlib.suppress(errors.AlreadyFinished):
                        experiments.request_cancel(session, experiment.id)
        session.commit()
    return sweep_views.sweep_view(session, sweep, full=True)


@router.delete("/sweeps/{sweep_id}", responses=ERROR_RESPONSES)
def delete_sweep(sweep_id: SweepId, session: SessionDep, principal: Member) -> dict[str, Any]:
    """Remove an ended sweep, its trials and their ended runs (409 while it runs: cancel it
    first). Runs a confirmation ablation holds are kept with it."""
    sweep = _sweep(session, sweep_id)
    ensure_can_change(principal, sweep.owner, f"sweep {sweep_id}")
    if sweep.status in sweep_store.ACTIVE:
        raise HTTPException(409, f"sweep {sweep_id} is {sweep.status}: cancel it first")
    ids = sweep_store.delete_sweep(session, sweep_id)
    held = ablations.shared_elsewhere(session, "", set(ids)) if ids else set()
    removed = retention.remove_experiments(session, [i for i in ids if i not in held])
    session.commit()
    return {"deleted": sweep_id, "experiments_removed": len(removed)}


@router.get(
    "/sweeps/{sweep_id}/importance",
    response_class=Response,
    responses={**_OBJECT, **ERROR_RESPONSES},
)
def sweep_importance(
    sweep_id: SweepId, session: SessionDep, if_none_match: IfNoneMatch = None
) -> Response:
    """Optuna's parameter importances (PED-ANOVA) over the complete trials' validation
    objective; empty with fewer than two complete trials of different values. Conditional
    on If-None-Match, as GET /sweeps/{id}."""
    sweep = _sweep(session, sweep_id)
    trials = sweep_views.trial_records(session, sweep)
    found = study.importances(
        parse_space(sweep.space, sweep.base), trials, maximize=maximizes(sweep.objective)
    )
    return _conditional({"objective": sweep.objective, "importances": found}, if_none_match)


@router.get(
    "/sweeps/{sweep_id}/trials.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per trial."},
        **ERROR_RESPONSES,
    },
)
def sweep_trials_csv(sweep_id: SweepId, session: SessionDep) -> Response:
    """The trials as CSV: number, state, rung, value, then one column per searched field."""
    view = sweep_views.sweep_view(session, _sweep(session, sweep_id), full=True)
    return attachment(sweep_views.trials_csv(view), f"sweep-{sweep_id}-trials.csv")


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    top: int = Field(default=1, ge=1, le=MAX_CONFIRM_TOP, description="Best trials to confirm.")
    seeds: int = Field(default=5, ge=2, le=MAX_CONFIRM_SEEDS, description="Fresh seeds.")


@router.post(
    "/sweeps/{sweep_id}/confirm",
    status_code=201,
    responses={**ERROR_RESPONSES, **INVALID},
    openapi_extra=BODY_REQUIRED,
)
def confirm_sweep(
    sweep_id: SweepId,
    session: SessionDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    principal: Member,
    limits: QuotasDep,
    request: Annotated[ConfirmRequest, Body()] = ConfirmRequest(),
) -> dict[str, Any]:
    """Run the base recipe (arm 0) and the `top` best complete trials on `seeds` fresh seeds
    (never used by the sweep) as an ablation, on the test set: its summary
    (/ablations/{id}/summary: paired tests against arm 0, Holm-adjusted) says whether the
    winner beats the base. The sweep selected on validation only; these are test figures."""
    sweep = _sweep(session, sweep_id)
    ensure_can_change(principal, sweep.owner, f"sweep {sweep_id}")
    plan, ablation_request = sweep_views.confirm_plan(
        session, sweep, request.top, request.seeds, CostLimits.from_settings(settings)
    )
    if principal.key_id is not None:
        quotas.check_ablation_size(limits, len(plan.cells))
    admission.open_admission(session, principal)
    ablation, created = store_plan(
        session, ablation_request, plan, owner=principal.name,
        owned=lambda cpu_hours: admission.owner_fields(principal, cpu_hours),
    )  # fmt: skip
    admission.settle(session, principal, limits, created)
    sweep.confirm_ablation_id = ablation.id
    session.add(sweep)
    session.commit()
    dispatcher.dispatch_all([e.id for e in created])
    return {
        "sweep_id": sweep_id,
        "ablation_id": ablation.id,
        "arms": [arm.as_dict() for arm in plan.arms],
        "seeds": plan.seeds,
        "figures": "test",
        "summary": f"/ablations/{ablation.id}/summary",
    }


_ = AblationRequest  # the confirmation's request type (built in sweep_views)
