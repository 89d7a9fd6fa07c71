"""The experiment endpoints: submit, list, read, curves, per-record predictions, cancel.

Handlers are plain `def`: the store is synchronous SQLAlchemy, so FastAPI runs them in its
thread pool. The two big answers (loss curves, predictions) are built as JSON bytes with
orjson straight from numpy arrays, skipping response-model validation, which would cost more
than the database read for an 18,000-point series.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Body, Header, HTTPException, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Member, QuotasDep, ensure_can_change
from api.deps import DispatcherDep, EngineDep, SessionDep, SettingsDep
from api.errors import invalid
from api.routes.params import (
    MAX_INT,
    Cursor,
    ExperimentId,
    TagFilter,
    record_list,
    record_list_pattern,
)
from api.schemas import (
    BODY_REQUIRED,
    CONFLICT,
    DATABASE_DOWN,
    ERROR_RESPONSES,
    INVALID,
    ExperimentPage,
    ExperimentPublic,
    LossSeries,
    NoFields,
    PredictionsPage,
)
from api.services import admission, csv_export
from api.services.downsample import Steps, Values, downsample
from api.services.submission import parse_submission
from core import store
from core.cost import CostLimits
from core.spec import MAX_LOSS_POINTS, Dataset
from core.store.models import TERMINAL, Status

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/experiments", tags=["experiments"])

MAX_RECORDS_PER_REQUEST = 1000
MAX_NAME_QUERY = 100
_JSON = "application/json"

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


def _json(content: dict[str, Any], status_code: int = 200) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content=body, status_code=status_code, media_type=_JSON)


def _status(session: Session, experiment_id: str) -> str:
    status = store.get_status(session, experiment_id)
    if status is None:
        raise store.ExperimentNotFound(experiment_id)
    return status


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
    response: Response,
    body: Annotated[
        dict[str, Any],
        Body(
            openapi_examples=_SUBMIT_EXAMPLES,
            description="A full spec (ExperimentSpec's fields) or `preset` + `overrides`; "
            "either with optional `name` and `tags`. Refused (422) when one run of the spec "
            "would pass the server's cost bounds; see each preset's `cost` in GET /presets.",
        ),
    ],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[!-~]([ -~]*[!-~])?$",
            description="A retried POST with the same key returns the same experiment; "
            "a different body with a used key is 409.",
        ),
    ] = None,
) -> ExperimentPublic:
    """Queue one experiment, owned by the caller's account and counted against its key's
    quotas (429 over one). A retry with the same Idempotency-Key answers the same experiment
    and counts nothing again."""
    submission = parse_submission(body, CostLimits.from_settings(settings))
    admission.open_admission(session, principal)
    owned = admission.owner_fields(principal, submission.spec)
    experiment, created = store.create_experiment(
        session,
        submission.spec,
        name=submission.name,
        tags=submission.tags,
        preset=submission.preset,
        idempotency_key=idempotency_key,
        **owned,
    )
    admission.settle(session, principal, limits, [owned["cost"]] if created else [])
    # Durable first, then the message: a broker that is down loses nothing (the experiment
    # stays queued and undispatched, and the reaper sends it later).
    session.commit()
    if created:
        dispatcher.dispatch(experiment.id)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/experiments/{experiment.id}"
    return ExperimentPublic.of(experiment)


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
            json_schema_extra={"enum": list(store.SORTS)},
        ),
    ] = store.DEFAULT_SORT,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> ExperimentPage:
    """Newest first by default. A cursor belongs to its sort: another sort's is refused."""
    if sort not in store.SORTS:
        invalid("sort", f"{sort[:40]!r} is not a sort; one of {', '.join(store.SORTS)}")
    if q is not None and name is not None and q != name:
        invalid("name", "give the name filter once, as `q` or as `name`")
    filters = store.ExperimentFilters(
        status=status.value if status else None,
        tag=tag,
        preset=preset,
        dataset=dataset,
        name=q if q is not None else name,
    )
    items, next_cursor = store.list_experiments(
        session, filters=filters, sort=sort, limit=limit, cursor=cursor
    )
    return ExperimentPage(items=[ExperimentPublic.of(e) for e in items], next_cursor=next_cursor)


@router.get("/{experiment_id}", response_model=ExperimentPublic, responses=ERROR_RESPONSES)
def get_experiment(experiment_id: ExperimentId, session: SessionDep) -> ExperimentPublic:
    return ExperimentPublic.of(store.require_experiment(session, experiment_id))


@router.get(
    "/{experiment_id}/loss",
    response_class=Response,
    responses={200: {"model": LossSeries, "content": {_JSON: {}}}, **ERROR_RESPONSES},
)
async def get_loss(
    experiment_id: ExperimentId,
    engine: EngineDep,
    since_step: Annotated[
        int | None,
        Query(ge=0, le=MAX_INT, description="Only points after this step (for polling)."),
    ] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=2,
            le=MAX_LOSS_POINTS,
            description="Downsample to at most this many points, keeping each bucket's "
            "minimum and maximum (spikes survive).",
        ),
    ] = None,
) -> Response:
    # A finished series this process has read before is answered without the database
    # (and without a thread hop); anything else is one short read in the thread pool.
    finished = store.cached_finished_series(engine, experiment_id)
    if finished is not None:
        status, steps, values = finished.status, finished.steps, finished.values
    else:
        status, steps, values = await run_in_threadpool(
            _load_series, engine, experiment_id, since_step
        )
    if since_step is not None:  # live rows come filtered already; this cuts packed ones
        start = int(np.searchsorted(steps, since_step, side="right"))
        steps, values = steps[start:], values[start:]
    total = int(steps.shape[0])
    shown_steps, shown_values = downsample(steps, values, max_points)
    return _json(
        {
            "experiment_id": experiment_id,
            "status": status,
            "steps": shown_steps,
            # Losses are float32 in the engine and in the store: print them at that precision.
            "values": shown_values.astype(np.float32),
            "points": int(shown_steps.shape[0]),
            "total_points": total,
            "downsampled": int(shown_steps.shape[0]) < total,
            "last_step": int(steps[-1]) if total else since_step,
        }
    )


@router.get(
    "/{experiment_id}/loss.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "step,loss"}, **ERROR_RESPONSES},
)
def get_loss_csv(
    experiment_id: ExperimentId,
    session: SessionDep,
    max_points: Annotated[
        int | None,
        Query(ge=2, le=MAX_LOSS_POINTS, description="Downsample as /loss does; default: all."),
    ] = None,
) -> Response:
    """The loss series as a CSV download (step,loss), the points stored so far."""
    _status(session, experiment_id)
    steps, values = store.read_series(session, experiment_id)
    shown_steps, shown_values = downsample(steps, values, max_points)
    text = csv_export.loss_csv(shown_steps, shown_values)
    return csv_export.attachment(text, f"loss-{experiment_id}.csv")


def _load_series(
    engine: Engine, experiment_id: str, since_step: int | None
) -> tuple[str, Steps, Values]:
    with Session(engine) as session:
        finished = store.read_finished_series(session, experiment_id)
        if finished is not None:
            return finished.status, finished.steps, finished.values
        # Status before points: a status read as terminal means the points read after it
        # are complete (the worker writes its last points before it finishes).
        status = _status(session, experiment_id)
        steps, values = store.read_series(session, experiment_id, since_step=since_step)
        return status, steps, values


@router.get(
    "/{experiment_id}/predictions",
    response_class=Response,
    responses={
        200: {"model": PredictionsPage, "content": {_JSON: {}}},
        **CONFLICT,
        **ERROR_RESPONSES,
    },
)
def get_predictions(
    experiment_id: ExperimentId,
    session: SessionDep,
    records: Annotated[
        str | None,
        Query(
            max_length=20_000,
            json_schema_extra={"pattern": record_list_pattern(MAX_RECORDS_PER_REQUEST)},
            description="Comma-separated test record indices, e.g. 19,20. "
            "Without it: all records, paged by offset and limit.",
        ),
    ] = None,
    misclassified: Annotated[
        bool, Query(description="Only records the network got wrong (paged mode).")
    ] = False,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_RECORDS_PER_REQUEST)] = 100,
) -> Response:
    status = _status(session, experiment_id)
    blob = store.read_predictions(session, experiment_id)
    if blob is None:
        if status in TERMINAL:
            detail = f"experiment {experiment_id} has no predictions: it ended {status} "
            raise HTTPException(404, f"{detail}before evaluating the test set")
        raise HTTPException(
            409,
            f"no predictions until experiment {experiment_id} finishes (it is {status}); "
            "they are written when the run has evaluated the test set",
        )
    if records is not None:
        chosen = np.asarray(
            record_list(records, "records", most=MAX_RECORDS_PER_REQUEST, available=blob.records),
            dtype=np.intp,
        )
        matching = int(chosen.shape[0])
        offset, limit = 0, matching
    else:
        pool = np.flatnonzero(blob.labels != blob.predicted) if misclassified else None
        matching = int(pool.shape[0]) if pool is not None else blob.records
        window = np.arange(offset, min(offset + limit, matching))
        chosen = pool[window] if pool is not None else window
    items = [
        {
            "index": int(i),
            "label": int(blob.labels[i]),
            "predicted": int(blob.predicted[i]),
            "correct": bool(blob.labels[i] == blob.predicted[i]),
            "outputs": blob.outputs[i],
        }
        for i in chosen
    ]
    return _json(
        {
            "experiment_id": experiment_id,
            "total_records": blob.records,
            "matching": matching,
            "offset": offset,
            "limit": limit,
            "records": items,
        }
    )


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
    owner = store.require_experiment(session, experiment_id).owner
    ensure_can_change(principal, owner, f"experiment {experiment_id}")
    experiment = store.request_cancel(session, experiment_id)
    session.commit()
    response.status_code = 200 if experiment.status == Status.cancelled else 202
    return ExperimentPublic.of(experiment)
