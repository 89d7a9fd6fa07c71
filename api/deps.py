"""FastAPI dependencies: the one way a route reaches the database, the settings, the
dispatcher. Each reads what create_app() put on app.state; nothing here builds its own.

The ones that only read app.state are `async`: FastAPI runs a plain `def` dependency in its
thread pool, a trip that costs more than the dependency itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from api.background.dispatch import Dispatcher
from api.services.metrics import AppMetrics
from core.settings import Settings


async def get_engine(request: Request) -> Engine:
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


def store_write_lock(engine: Engine) -> AbstractContextManager[object]:
    """What this process's writers that take the store's write lock hold around their
    transaction. On SQLite one writer at a time gets the database's lock anyway, and threads
    that wait for it there sleep in SQLite's busy handler, whose naps grow to 100 ms: waiting
    on a Python lock instead hands the turn over at once. Postgres locks rows, so writers
    there need nothing of the kind."""
    if engine.dialect.name == "sqlite":
        return threading.Lock()
    return nullcontext()


async def get_write_lock(request: Request) -> AbstractContextManager[object]:
    lock: AbstractContextManager[object] = request.app.state.write_lock
    return lock


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


async def get_metrics(request: Request) -> AppMetrics:
    metrics: AppMetrics = request.app.state.metrics
    return metrics


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
MetricsDep = Annotated[AppMetrics, Depends(get_metrics)]
WriteLockDep = Annotated[AbstractContextManager[object], Depends(get_write_lock)]
