"""Per-record predictions of a finished experiment: each test record's label, the network's
answer and its outputs, by record index or paged (optionally only the misclassified ones).

Built as JSON bytes with orjson straight from numpy arrays, skipping response-model
validation, which would cost more than the read for a page of a thousand records.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import SessionDep
from api.http.json_bytes import JSON, json_response
from api.routes.experiment_reads import status_of
from api.routes.params import MAX_INT, ExperimentId, record_list, record_list_pattern
from api.schemas import CONFLICT, ERROR_RESPONSES, PredictionsPage
from core.store import artifacts
from core.store.models import TERMINAL

router = APIRouter(prefix="/experiments", tags=["experiments"])

MAX_RECORDS_PER_REQUEST = 1000


@router.get(
    "/{experiment_id}/predictions",
    response_class=Response,
    responses={
        200: {"model": PredictionsPage, "content": {JSON: {}}},
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
    status = status_of(session, experiment_id)
    blob = artifacts.read_predictions(session, experiment_id)
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
    return json_response(
        {
            "experiment_id": experiment_id,
            "total_records": blob.records,
            "matching": matching,
            "offset": offset,
            "limit": limit,
            "records": items,
        }
    )
