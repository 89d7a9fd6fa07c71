"""Experiments side by side: aligned (optionally smoothed) loss curves, and per-record outputs
with the records where the experiments' predictions disagree."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from sqlmodel import Session

from api.deps import SessionDep
from api.errors import invalid
from api.routes.params import id_list, id_list_pattern, record_list, record_list_pattern
from api.schemas import CONFLICT, ERROR_RESPONSES, INVALID
from api.services import curves
from core import store
from core.store.models import Experiment

router = APIRouter(prefix="/compare", tags=["compare"])

MAX_EXPERIMENTS = 20
MAX_RECORDS = 100

ExperimentsQuery = Annotated[
    str,
    Query(
        max_length=MAX_EXPERIMENTS * 70,
        json_schema_extra={"pattern": id_list_pattern(MAX_EXPERIMENTS)},
        description=f"Comma-separated experiment ids, 1..{MAX_EXPERIMENTS}.",
        examples=["a1b2,c3d4"],
    ),
]


def _experiments(session: Session, ids: list[str]) -> list[Experiment]:
    return [store.require_experiment(session, experiment_id) for experiment_id in ids]


def _who(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.id,
        "name": experiment.name,
        "preset": experiment.preset,
        "status": experiment.status,
    }


@router.get("/loss", responses={**ERROR_RESPONSES, **INVALID})
def compare_loss(
    session: SessionDep,
    experiments: ExperimentsQuery,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 500,
    smoothing: Annotated[
        float, Query(ge=0.0, le=0.999, description="TensorBoard's EMA weight; 0 is off.")
    ] = 0.0,
) -> dict[str, Any]:
    """Loss curves on one shared step axis (null where a run has no point, e.g. one still
    running), smoothed as TensorBoard smooths, then downsampled keeping each bucket's min
    and max so spikes survive. Also works while the experiments run."""
    ids = id_list(experiments, "experiments", most=MAX_EXPERIMENTS)
    series = []
    found = _experiments(session, ids)
    for experiment in found:
        steps, values = store.read_series(session, experiment.id)
        series.append((steps, curves.tensorboard_ema(values, smoothing)))
    aligned = curves.align(series)
    small, _, _ = curves.downsample_aligned(aligned, max_points)
    return {
        "steps": small.steps.tolist(),
        "smoothing": smoothing,
        "max_points": max_points,
        "curves": [
            {**_who(e), "points": int(s.size), "values": curves.json_floats(small.values[i])}
            for i, (e, (s, _)) in enumerate(zip(found, series, strict=True))
        ],
    }


@router.get("/predictions", responses={**ERROR_RESPONSES, **INVALID, **CONFLICT})
def compare_predictions(
    session: SessionDep,
    experiments: ExperimentsQuery,
    records: Annotated[
        str | None,
        Query(
            max_length=2_000,
            json_schema_extra={"pattern": record_list_pattern(MAX_RECORDS)},
            description="Comma-separated test record indices, e.g. 19,20.",
        ),
    ] = None,
    disagreements_limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> dict[str, Any]:
    """Each experiment's 10 outputs for the chosen records, and the records (over all the
    test records they share) where their predicted labels are not all the same."""
    ids = id_list(experiments, "experiments", most=MAX_EXPERIMENTS)
    found = _experiments(session, ids)
    blobs = []
    for experiment in found:
        blob = store.read_predictions(session, experiment.id)
        if blob is None:
            raise HTTPException(
                409,
                f"experiment {experiment.id} has no predictions ({experiment.status}); "
                "they are stored when a run succeeds",
            )
        blobs.append(blob)
    shared = min(b.records for b in blobs)
    labels = blobs[0].labels[:shared]
    if any(not np.array_equal(b.labels[:shared], labels) for b in blobs[1:]):
        invalid(
            "experiments",
            "these experiments were evaluated on different test records (another dataset?)",
        )
    scope = f"these experiments all evaluated {shared} test records,"
    wanted = (
        record_list(records, "records", most=MAX_RECORDS, available=shared, scope=scope)
        if records
        else []
    )
    predicted = np.stack([b.predicted[:shared] for b in blobs])
    disagree = np.flatnonzero((predicted != predicted[0]).any(axis=0))
    return {
        "experiments": [
            {**_who(e), "records": b.records, "accuracy": float((b.predicted == b.labels).mean())}
            for e, b in zip(found, blobs, strict=True)
        ],
        "records": [
            {
                "index": r,
                "label": int(labels[r]),
                "agree": bool((predicted[:, r] == predicted[0, r]).all()),
                "experiments": [
                    {
                        **_who(e),
                        "predicted": int(b.predicted[r]),
                        "correct": bool(b.predicted[r] == b.labels[r]),
                        "outputs": curves.json_floats(b.outputs[r].astype(np.float64)),
                    }
                    for e, b in zip(found, blobs, strict=True)
                ],
            }
            for r in wanted
        ],
        "disagreements": {
            "compared_records": shared,
            "count": int(disagree.size),
            "records": [
                {
                    "index": int(r),
                    "label": int(labels[r]),
                    "predicted": [int(p) for p in predicted[:, r]],
                }
                for r in disagree[:disagreements_limit]
            ],
        },
    }
