"""FastAPI dependencies: the one way a route reaches the database, the settings, the
dispatcher. Each reads what create_app() put on app.state; nothing here builds its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from api.background.dispatch import Dispatcher
from api.services.metrics import AppMetrics
from core.settings import Settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request. Routes that write commit themselves, before they answer
    and before anything (the broker message) that must only follow a durable write."""
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


def get_metrics(request: Request) -> AppMetrics:
    metrics: AppMetrics = request.app.state.metrics
    return metrics


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
MetricsDep = Annotated[AppMetrics, Depends(get_metrics)]
