"""Reading one experiment: its state (GET /experiments/{id}) and its loss curve (/loss, and
/loss.csv to download).

The two answers pollers ask for again and again carry a strong ETag (api/http/etags.py):
sent back in If-None-Match, an unchanged answer is a 304 without a body. Both are `async`
routes that do their reading in one trip to the thread pool, and build their JSON bytes
directly (orjson, or pydantic's serializer) instead of through response-model validation.

An experiment's state is read as one Core row of every column but the spec (which never
changes): while that row is the same as when this process last built the answer, the
answer's bytes are reused (`_BODIES`), which skips the ORM and the serializer. An answer
read less than TRAINLAB_POLL_FRESH_S ago (0.2 s; api/http/freshness.py), with no write
through this process since, is given again without even that read, and without a trip to
the thread pool: many clients polling one run cost one read per window. So a run deleted by
another process answers 404 within that window, and one deleted through this one at once.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session

from api.deps import EngineDep, SessionDep, SettingsDep
from api.http import csv_response
from api.http.etags import JSON, NOT_MODIFIED_DOC, conditional_json
from api.http.freshness import FreshAnswers
from api.http.threads import run_in_threadpool
from api.routes.params import MAX_INT, ExperimentId, IfNoneMatch, SeriesName
from api.schemas import ERROR_RESPONSES, ExperimentPublic, LossSeries
from api.services import csv_export
from api.services.downsample import Steps, Values, downsample
from core.spec import MAX_LOSS_POINTS
from core.store import experiments, series
from core.store.cache import LRU
from core.store.errors import ExperimentNotFound
from core.store.models import DEFAULT_SERIES

router = APIRouter(prefix="/experiments", tags=["experiments"])


def status_of(session: Session, experiment_id: str) -> str:
    status = experiments.get_status(session, experiment_id)
    if status is None:
        raise ExperimentNotFound(experiment_id)
    return status


_BODIES: LRU[tuple[str, str], tuple[tuple[object, ...], bytes]] = LRU(1024, per_run=True)
# Keyed (engine URL, id) for the state, (engine URL, id, since_step, max_points, series) for
# /loss.
_FRESH_STATE = FreshAnswers()
_FRESH_SERIES = FreshAnswers()


def _experiment_body(engine: Engine, experiment_id: str, window_s: float) -> bytes:
    key = (str(engine.url), experiment_id)
    began = FreshAnswers.read_begins()
    body = _body_at_version(engine, experiment_id, key)
    _FRESH_STATE.put(key, began, body, window_s)
    return body


def _body_at_version(engine: Engine, experiment_id: str, key: tuple[str, str]) -> bytes:
    # The row's version: a column that does not show (such as dispatched_at) only makes the
    # answer be built again.
    version = experiments.state_version(engine, experiment_id)
    if version is None:
        _FRESH_STATE.forget(key)
        raise ExperimentNotFound(experiment_id)
    cached = _BODIES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    with Session(engine) as session:
        experiment = experiments.require_experiment(session, experiment_id)
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
    series_asked: SeriesName = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The loss series so far. Poll with since_step and If-None-Match: 304 until there are new
    points or the status changes. A GAN records two series, `discriminator` (the default) and
    `generator`; a classifier one, `loss`."""
    # Live points read less than TRAINLAB_POLL_FRESH_S ago for the same question are given
    # again as the same bytes: pollers of one run converge on one since_step (the last step
    # they have), so they cost one read and one encoding per window between them.
    fresh_key = (str(engine.url), experiment_id, since_step, max_points, series_asked)
    window_s = settings.poll_fresh_s
    remembered = _FRESH_SERIES.get(fresh_key, window_s)
    if remembered is not None:
        return conditional_json(remembered, if_none_match)
    began = FreshAnswers.read_begins()
    # One short read in the thread pool. A finished run's packed series comes from this
    # process's cache, but its status is read each window all the same: another API process
    # may have deleted the run, which must answer 404 here within the window too.
    name, status, steps, values = await run_in_threadpool(
        _load_series, engine, experiment_id, since_step, series_asked
    )
    body = _loss_body(experiment_id, status, steps, values, since_step, max_points, name)
    _FRESH_SERIES.put(fresh_key, began, body, window_s)
    return conditional_json(body, if_none_match)


def _loss_body(
    experiment_id: str,
    status: str,
    steps: Steps,
    values: Values,
    since_step: int | None,
    max_points: int | None,
    name: str = DEFAULT_SERIES,
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
            "series": name,
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
    engine: Engine, experiment_id: str, since_step: int | None, series_asked: str | None
) -> tuple[str, str, Steps, Values]:
    with Session(engine) as session:
        run = series.read_run_series(
            session, experiment_id, since_step=since_step, series=series_asked
        )
    if run is None:
        raise ExperimentNotFound(experiment_id)
    return run.series, run.status, run.steps, run.values


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
    series_asked: SeriesName = None,
) -> Response:
    """The loss series as a CSV download (step,<series>: step,loss for a classifier), the
    points stored so far."""
    run = series.read_run_series(session, experiment_id, series=series_asked)
    if run is None:
        raise ExperimentNotFound(experiment_id)
    shown_steps, shown_values = downsample(run.steps, run.values, max_points)
    text = csv_export.loss_csv(shown_steps, shown_values, run.series)
    suffix = "" if run.series == DEFAULT_SERIES else f"-{run.series}"
    return csv_response.attachment(text, f"loss-{experiment_id}{suffix}.csv")
