"""Experiments side by side: aligned (optionally smoothed) loss curves, as JSON or CSV, and
per-record outputs with the records where predictions disagree and a paired per-record
analysis (McNemar's exact test, a bootstrap interval) of each experiment against the first.
The work is in api/services/compare_views.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import SessionDep
from api.http import csv_response
from api.routes.params import id_list, id_list_pattern, record_list, record_list_pattern
from api.schemas import CONFLICT, ERROR_RESPONSES, INVALID
from api.services import compare_views, csv_export

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
SmoothingQuery = Annotated[
    float, Query(ge=0.0, le=0.999, description="TensorBoard's EMA weight; 0 is off.")
]


@router.get("/loss", responses={**ERROR_RESPONSES, **INVALID})
def compare_loss(
    session: SessionDep,
    experiments: ExperimentsQuery,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 500,
    smoothing: SmoothingQuery = 0.0,
) -> dict[str, Any]:
    """Loss curves on one shared step axis (null where a run has no point, e.g. one still
    running), smoothed as TensorBoard smooths, then downsampled keeping each bucket's min
    and max so spikes survive. Also works while the experiments run."""
    found = compare_views.load(session, id_list(experiments, "experiments", most=MAX_EXPERIMENTS))
    return compare_views.loss_comparison(session, found, max_points=max_points, smoothing=smoothing)


@router.get(
    "/loss.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "experiment_id,name,step,loss"},
        **ERROR_RESPONSES,
        **INVALID,
    },
)
def compare_loss_csv(
    session: SessionDep,
    experiments: ExperimentsQuery,
    max_points: Annotated[
        int | None, Query(ge=10, le=100_000, description="Downsample; default: every point.")
    ] = None,
    smoothing: SmoothingQuery = 0.0,
) -> Response:
    """The same curves as CSV, one row per (experiment, step) with a point, as a download."""
    found = compare_views.load(session, id_list(experiments, "experiments", most=MAX_EXPERIMENTS))
    comparison = compare_views.loss_comparison(
        session, found, max_points=max_points, smoothing=smoothing
    )
    return csv_response.attachment(csv_export.compare_loss_csv(comparison), "compare-loss.csv")


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
    """Each experiment's 10 outputs for the chosen records; the records (over all the test
    records they share) where their predicted labels are not all the same; and `paired`:
    each experiment after the first against the first, on the records both were scored on:
    both-right / both-wrong / discordant counts (b: first right and second wrong, c: the
    reverse), McNemar's exact p-value (binomial test of b among b + c), the accuracy
    difference (second - first) with a 95% paired bootstrap interval (10,000 resamples,
    seeded by the pair, so the same request gives the same interval), and `p_holm`, the
    McNemar p-values Holm-adjusted across the pairs."""
    found = compare_views.load(session, id_list(experiments, "experiments", most=MAX_EXPERIMENTS))
    scored = compare_views.scored(session, found)
    scope = f"these experiments all evaluated {scored.shared} test records,"
    wanted = (
        record_list(records, "records", most=MAX_RECORDS, available=scored.shared, scope=scope)
        if records
        else []
    )
    return compare_views.predictions_comparison(
        scored, wanted=wanted, disagreements_limit=disagreements_limit
    )
