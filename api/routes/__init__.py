"""The API's routers, in the order they are mounted. A new group of endpoints adds its
router here; api/main.py includes every one of them."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    ablations,
    compare,
    dashboard,
    datasets,
    docs,
    events,
    experiments,
    health,
    presets,
)

ROUTERS: list[APIRouter] = [
    health.router,
    presets.router,
    experiments.router,
    events.router,
    ablations.router,
    compare.router,
    datasets.router,
    dashboard.router,
    docs.router,
]
