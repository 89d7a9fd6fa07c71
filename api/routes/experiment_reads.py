"""Reading one experiment: its state (GET /experiments/{id}) and its loss curve (/loss, and
/loss.csv to download).

The two answers pollers ask for again and again carry a strong ETag (api/services/etags.py):
sent back in If-None-Match, an unchanged answer is a 304 without a body. Both are `async`
routes that do their reading in one trip to the thread pool, and build their JSON bytes
directly (orjson, or pydantic's serializer) instead of through response-model validation.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep
from api.routes.params import MAX_INT, ExperimentId
from api.schemas import ERROR_RESPONSES, ExperimentPublic, LossSeries
from api.services import csv_export
from api.services.downsample import Steps, Values, downsample
from api.services.etags import JSON, NOT_MODIFIED_DOC, conditional_json
from core import store
from core.spec import MAX_LOSS_POINTS

router = APIRouter(prefix="/experiments", tags=["experiments"])

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=2000,
        description="The ETag of the answer the client holds: 304 without a body while it "
        "is still the answer.",
    ),
]


def status_of(session: Session, experiment_id: str) -> str:
    status = store.get_status(session, experiment_id)
    if status is None:
        raise store.ExperimentNotFound(experiment_id)
    return status


def _experiment_body(engine: Engine, experiment_id: str) -> bytes:
    with Session(engine) as session:
        experiment = store.require_experiment(session, experiment_id)
        return ExperimentPublic.of(experiment).model_dump_json().encode()


@router.get(
    "/{experiment_id}",
    response_model=ExperimentPublic,
    responses={**NOT_MODIFIED_DOC, **ERROR_RESPONSES},
)
async def get_experiment(
    experiment_id: ExperimentId, engine: EngineDep, if_none_match: IfNoneMatch = None
) -> Response:
    """Status, progress, metrics. Poll with If-None-Match: 304 while nothing has changed."""
    body = await run_in_threadpool(_experiment_body, engine, experiment_id)
    return conditional_json(body, if_none_match)


@router.get(
    "/{experiment_id}/loss",
    response_class=Response,
    responses={
        200: {"model": LossSeries, "content": {JSON: {}}},
        **NOT_MODIFIED_DOC,
        **ERROR_RESPONSES,
    },
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
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The loss series so far. Poll with since_step and If-None-Match: 304 until there are new
    points or the status changes."""
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
    body = orjson.dumps(
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
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return conditional_json(body, if_none_match)


def _load_series(
    engine: Engine, experiment_id: str, since_step: int | None
) -> tuple[str, Steps, Values]:
    with Session(engine) as session:
        finished = store.read_finished_series(session, experiment_id)
        if finished is not None:
            return finished.status, finished.steps, finished.values
        # Status before points: a status read as terminal means the points read after it
        # are complete (the worker writes its last points before it finishes).
        status = status_of(session, experiment_id)
        steps, values = store.read_series(session, experiment_id, since_step=since_step)
        return status, steps, values


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
    status_of(session, experiment_id)
    steps, values = store.read_series(session, experiment_id)
    shown_steps, shown_values = downsample(steps, values, max_points)
    text = csv_export.loss_csv(shown_steps, shown_values)
    return csv_export.attachment(text, f"loss-{experiment_id}.csv")
