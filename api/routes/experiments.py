"""Experiments as a collection: submit one, list and search them, cancel one.

Reading one experiment is in api/routes/experiment_reads.py (state, curve), its predictions in
api/routes/predictions.py, deleting it in api/routes/deletion.py.

Handlers are plain `def`: the store is synchronous SQLAlchemy, so FastAPI runs them in its
thread pool.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Query, Response

from api.auth import Member, QuotasDep, ensure_can_change
from api.deps import DispatcherDep, SessionDep, SettingsDep, WriteLockDep
from api.routes.params import Cursor, ExperimentId, TagFilter, idempotency_header
from api.schemas import (
    BODY_REQUIRED,
    CONFLICT,
    DATABASE_DOWN,
    ERROR_RESPONSES,
    INVALID,
    ExperimentPage,
    ExperimentPublic,
    NoFields,
)
from api.services import admission
from api.services.gan_judge import resolve_judge
from api.services.submission import parse_submission
from core.cost import CostLimits
from core.errors import invalid
from core.spec import Dataset
from core.store import experiments
from core.store.models import Status

router = APIRouter(prefix="/experiments", tags=["experiments"])

MAX_NAME_QUERY = 100

_SUBMIT_EXAMPLES: dict[str, Any] = {
    "preset": {
        "summary": "A preset with overrides",
        "value": {
            "preset": "seed-layernorm",
            "overrides": {"epochs": 1, "train_limit": 5000},
            "name": "quick layernorm",
            "tags": ["book"],
        },
    },
    "spec": {
        "summary": "A full spec",
        "value": {
            "model": {"hidden": [200], "activation": "relu", "output": "none"},
            "loss": "cross_entropy",
            "optimizer": "adam",
            "epochs": 1,
            "tags": ["relu"],
        },
    },
}


@router.post(
    "",
    status_code=201,
    response_model=ExperimentPublic,
    responses={**INVALID, **DATABASE_DOWN, **CONFLICT},
)
def submit_experiment(
    session: SessionDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    principal: Member,
    limits: QuotasDep,
    background: BackgroundTasks,
    write_lock: WriteLockDep,
    body: Annotated[
        dict[str, Any],
        Body(
            openapi_examples=_SUBMIT_EXAMPLES,
            description="A full spec (ExperimentSpec's fields) or `preset` + `overrides`; "
            "either with optional `name` and `tags`. Refused (422) when one run of the spec "
            "would pass the server's cost bounds; see each preset's `cost` in GET /presets.",
        ),
    ],
    idempotency_key: Annotated[str | None, idempotency_header("experiment")] = None,
) -> Response:
    """Queue one experiment, owned by the caller's account and counted against its key's
    quotas (429 over one). A retry with the same Idempotency-Key answers the same experiment
    and counts nothing again."""
    submission = parse_submission(body, CostLimits.from_settings(settings))
    owned = admission.owner_fields(
        principal, submission.cost.cpu_hours, submission.cost.stored_bytes
    )
    with write_lock, admission.transaction(session):
        # A GAN's judge is looked up in the admission's own transaction (one write lock).
        spec = resolve_judge(session, submission.spec, principal.name, "judge")
        submission = dataclasses.replace(submission, spec=spec)
        admission.open_admission(session, principal)
        experiment, created = experiments.create_experiment(
            session,
            submission.spec,
            name=submission.name,
            tags=submission.tags,
            preset=submission.preset,
            idempotency_key=idempotency_key,
            **owned,
        )
        admission.settle(session, principal, limits, [experiment] if created else [])
    # Durable first (the transaction committed), then the message: a broker that is down loses
    # nothing (the experiment stays queued and undispatched, and the reaper sends it later).
    # The message goes out after the answer, off the request's critical path; a process that
    # dies before sending it leaves the experiment undispatched, and the reaper sends it after
    # DISPATCH_GRACE_S (api/background/reaper.py).
    headers = {"Location": f"/experiments/{experiment.id}"}
    if created:
        background.add_task(dispatcher.dispatch_coalesced, experiment.id)
    else:
        headers["Idempotent-Replayed"] = "true"
    # The answer's bytes straight from its model: returned as the model, FastAPI would check
    # it against the same model once more before encoding it, work done twice for nothing.
    return Response(
        ExperimentPublic.of(experiment, submission.cost).model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers=headers,
    )


@router.get("", response_model=ExperimentPage, responses={**INVALID, **DATABASE_DOWN})
def list_experiments(
    session: SessionDep,
    status: Annotated[Status | None, Query(description="Only experiments in this state.")] = None,
    tag: TagFilter = None,
    preset: Annotated[
        str | None, Query(max_length=64, description="Only those made from this preset.")
    ] = None,
    dataset: Annotated[Dataset | None, Query(description="Only on this dataset.")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_NAME_QUERY,
            description="Only those whose name contains this text (case-insensitive).",
        ),
    ] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=MAX_NAME_QUERY, description="Same as `q`.")
    ] = None,
    sort: Annotated[
        str,
        Query(
            max_length=32,
            description="`created_at`, or a metric (`test_accuracy`, `final_loss`, "
            "`test_loss`); a leading `-` sorts descending. Experiments without the metric "
            "come last; ties are newest first.",
            json_schema_extra={"enum": list(experiments.SORTS)},
        ),
    ] = experiments.DEFAULT_SORT,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> ExperimentPage:
    """Newest first by default. A cursor belongs to its sort: another sort's is refused."""
    if sort not in experiments.SORTS:
        invalid("sort", f"{sort[:40]!r} is not a sort; one of {', '.join(experiments.SORTS)}")
    if q is not None and name is not None and q != name:
        invalid("name", "give the name filter once, as `q` or as `name`")
    filters = experiments.ExperimentFilters(
        status=status.value if status else None,
        tag=tag,
        preset=preset,
        dataset=dataset,
        name=q if q is not None else name,
    )
    items, next_cursor = experiments.list_experiments(
        session, filters=filters, sort=sort, limit=limit, cursor=cursor
    )
    return ExperimentPage(items=[ExperimentPublic.of(e) for e in items], next_cursor=next_cursor)


@router.post(
    "/{experiment_id}/cancel",
    response_model=ExperimentPublic,
    responses={
        202: {"model": ExperimentPublic, "description": "Running: it stops at its next flush."},
        **CONFLICT,
        **ERROR_RESPONSES,
    },
    openapi_extra=BODY_REQUIRED,
)
def cancel_experiment(
    experiment_id: ExperimentId,
    session: SessionDep,
    principal: Member,
    response: Response,
    _body: Annotated[NoFields, Body()] = NoFields(),
) -> ExperimentPublic:
    """A queued experiment is cancelled at once (200); a running one is asked to stop (202)
    and keeps the curve it has so far; a finished one can't be cancelled (409). Only its
    owner, or an admin, may cancel it (403)."""
    owner = experiments.require_experiment(session, experiment_id).owner
    ensure_can_change(principal, owner, f"experiment {experiment_id}")
    experiment = experiments.request_cancel(session, experiment_id)
    session.commit()
    response.status_code = 200 if experiment.status == Status.cancelled else 202
    return ExperimentPublic.of(experiment)
