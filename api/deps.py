"""FastAPI dependencies: the request's database session and the app's settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api.settings import Settings


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


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
