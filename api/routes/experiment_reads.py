"""Reading one experiment: its state (GET /experiments/{id}) and its loss curve (/loss, and
/loss.csv to download).

The two answers pollers ask for again and again carry a strong ETag (api/services/etags.py):
sent back in If-None-Match, an unchanged answer is a 304 without a body. Both are `async`
routes that do their reading in one trip to the thread pool, and build their JSON bytes
directly (orjson, or pydantic's serializer) instead of through response-model validation.

An experiment's state is read as one Core row of every column but the spec (which never
changes): while that row is the same as when this process last built the answer, the
answer's bytes are reused (`_BODIES`), which skips the ORM and the serializer. An answer
read less than TRAINLAB_POLL_FRESH_S ago (0.2 s; api/services/freshness.py), with no write
through this process since, is given again without even that read, and without a trip to
the thread pool: many clients polling one run cost one read per window. So a run deleted by
another process answers 404 within that window, and one deleted through this one at once.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import Engine, bindparam, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, SessionDep, SettingsDep
from api.routes.params import MAX_INT, ExperimentId
from api.schemas import ERROR_RESPONSES, ExperimentPublic, LossSeries
from api.services import csv_export
from api.services.downsample import Steps, Values, downsample
from api.services.etags import JSON, NOT_MODIFIED_DOC, conditional_json
from api.services.freshness import FreshAnswers
from api.services.series_names import SeriesName, series_name
from core import store
from core.spec import MAX_LOSS_POINTS
from core.store.cache import LRU
from core.store.models import DEFAULT_SERIES, TERMINAL
from core.store.tables import EXPERIMENTS

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


# Every column but the spec: the row's version, compared whole (a column that does not show,
# such as dispatched_at, only makes the answer be built again).
_VERSION = select(*(c for c in EXPERIMENTS.c if c.name != "spec")).where(
    EXPERIMENTS.c.id == bindparam("experiment_id")
)
_BODIES: LRU[tuple[str, str], tuple[tuple[object, ...], bytes]] = LRU(1024)
# Keyed (engine URL, id) for the state, (engine URL, id, since_step, max_points) for /loss.
_FRESH_STATE = FreshAnswers()
_FRESH_SERIES = FreshAnswers()


def _experiment_body(engine: Engine, experiment_id: str, window_s: float) -> bytes:
    key = (str(engine.url), experiment_id)
    began = FreshAnswers.read_begins()
    body = _body_at_version(engine, experiment_id, key)
    _FRESH_STATE.put(key, began, body, window_s)
    return body


def _body_at_version(engine: Engine, experiment_id: str, key: tuple[str, str]) -> bytes:
    with engine.connect() as connection:
        row = connection.execute(_VERSION, {"experiment_id": experiment_id}).first()
    if row is None:
        _FRESH_STATE.forget(key)
        raise store.ExperimentNotFound(experiment_id)
    version = tuple(row)
    cached = _BODIES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    with Session(engine) as session:
        experiment = store.require_experiment(session, experiment_id)
        body = ExperimentPublic.of(experiment).model_dump_json().encode()
    # Stored under the version read first: if the row moved in between, the next read sees
    # a newer version and builds the answer again.
    _BODIES.put(key, (version, body))
    return body


@router.get(
    "/{experiment_id}",
    response_model=ExperimentPublic,
    responses={**NOT_MODIFIED_DOC, **ERROR_RESPONSES},
)
async def get_experiment(
    experiment_id: ExperimentId,
    engine: EngineDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Status, progress, metrics. Poll with If-None-Match: 304 while nothing has changed."""
    window_s = settings.poll_fresh_s
    body = _FRESH_STATE.get((str(engine.url), experiment_id), window_s)
    if body is None:
        body = await run_in_threadpool(_experiment_body, engine, experiment_id, window_s)
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
    settings: SettingsDep,
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
    series: SeriesName = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The loss series so far. Poll with since_step and If-None-Match: 304 until there are new
    points or the status changes. A GAN records two series, `discriminator` (the default) and
    `generator`; a classifier one, `loss`."""
    # Live points read less than TRAINLAB_POLL_FRESH_S ago for the same question are given
    # again as the same bytes: pollers of one run converge on one since_step (the last step
    # they have), so they cost one read and one encoding per window between them.
    fresh_key = (str(engine.url), experiment_id, since_step, max_points, series)
    window_s = settings.poll_fresh_s
    remembered = _FRESH_SERIES.get(fresh_key, window_s)
    if remembered is not None:
        return conditional_json(remembered, if_none_match)
    began = FreshAnswers.read_begins()
    # A finished series this process has read before is answered without the database
    # (and without a thread hop); anything else is one short read in the thread pool.
    finished = store.cached_finished_series(engine, experiment_id, series or DEFAULT_SERIES)
    name = series or DEFAULT_SERIES
    if finished is not None:
        status, steps, values = finished.status, finished.steps, finished.values
    else:
        name, status, steps, values = await run_in_threadpool(
            _load_series, engine, experiment_id, since_step, series
        )
    body = _loss_body(experiment_id, status, steps, values, since_step, max_points, name)
    if finished is None:  # a finished series has a cache of its own
        _FRESH_SERIES.put(fresh_key, began, body, window_s)
    return conditional_json(body, if_none_match)


def _loss_body(
    experiment_id: str,
    status: str,
    steps: Steps,
    values: Values,
    since_step: int | None,
    max_points: int | None,
    series: str = DEFAULT_SERIES,
) -> bytes:
    if since_step is not None:  # live rows come filtered already; this cuts packed ones
        start = int(np.searchsorted(steps, since_step, side="right"))
        steps, values = steps[start:], values[start:]
    total = int(steps.shape[0])
    shown_steps, shown_values = downsample(steps, values, max_points)
    return orjson.dumps(
        {
            "experiment_id": experiment_id,
            "status": status,
            "series": series,
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


def _load_series(
    engine: Engine, experiment_id: str, since_step: int | None, series: str | None
) -> tuple[str, str, Steps, Values]:
    with Session(engine) as session:
        # Status before points: a status read as terminal means the points read after it
        # are complete (the worker writes its last points before it finishes).
        status = status_of(session, experiment_id)
        name = series_name(session, experiment_id, series)
        if status in TERMINAL:
            finished = store.read_finished_series(session, experiment_id, name)
            if finished is not None:  # cached from now on: later polls skip the database
                return name, finished.status, finished.steps, finished.values
        steps, values = store.read_series(
            session, experiment_id, since_step=since_step, series=name
        )
        return name, status, steps, values


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
    series: SeriesName = None,
) -> Response:
    """The loss series as a CSV download (step,<series>: step,loss for a classifier), the
    points stored so far."""
    status_of(session, experiment_id)
    name = series_name(session, experiment_id, series)
    steps, values = store.read_series(session, experiment_id, series=name)
    shown_steps, shown_values = downsample(steps, values, max_points)
    text = csv_export.loss_csv(shown_steps, shown_values, name)
    suffix = "" if name == DEFAULT_SERIES else f"-{name}"
    return csv_export.attachment(text, f"loss-{experiment_id}{suffix}.csv")
