"""GET /metrics: Prometheus' text format (api/services/metrics.py says what is in it)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import MetricsDep
from api.http.threads import run_in_threadpool

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(app_metrics: MetricsDep) -> Response:
    """Experiments by status, queue depths, runs started and finished, steps per second per
    worker, reaper actions and HTTP latency by route, for a Prometheus scrape."""
    # The store is read at scrape time: off the event loop.
    body = await run_in_threadpool(generate_latest, app_metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
