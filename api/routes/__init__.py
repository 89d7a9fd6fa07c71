"""The API's routers, in the order they are mounted. A new group of endpoints adds its
router here; api/app.py includes every one of them."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    ablations,
    changes,
    compare,
    dashboard,
    datasets,
    deletion,
    docs,
    events,
    experiment_reads,
    experiments,
    gan,
    health,
    keys,
    metrics,
    models,
    predictions,
    presets,
    sweeps,
)

# Open to anyone even when the server requires API keys: probes, the dashboard's page (it
# asks for a key itself) and the API docs (with their Authorize button).
PUBLIC_ROUTERS: tuple[APIRouter, ...] = (health.router, dashboard.router, docs.router)

ROUTERS: list[APIRouter] = [
    health.router,
    presets.router,
    experiments.router,
    experiment_reads.router,
    predictions.router,
    models.router,
    gan.router,
    deletion.router,
    events.router,
    changes.router,
    ablations.router,
    sweeps.router,
    compare.router,
    datasets.router,
    metrics.router,
    keys.router,
    dashboard.router,
    docs.router,
]
