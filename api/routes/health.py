"""Liveness and readiness. /healthz answers while the process runs; /readyz answers 200 only
when the database is reachable and at the schema this code needs, and the broker accepts a
connection. Each check has a short timeout, so a hung dependency gives a prompt 503 that
names it instead of a hung probe."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine

from api.schemas import NotReadyBody
from core.broker import Broker
from core.store.migrate import schema_state

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 3.0


class ReadyBody(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadyBody, "description": "The database and the broker answer."},
        503: {"model": NotReadyBody, "description": "A dependency is not ready; named."},
    },
)
async def readyz(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    broker: Broker = request.app.state.broker
    database, broker_state = await asyncio.gather(
        _run_check(_check_database, engine), _run_check(_check_broker, broker)
    )
    checks = {"database": database, "broker": broker_state}
    # Which mode is on: "required" (every route but these probes, the dashboard's page and the
    # docs needs an API key) or "open" (the embedded default on loopback).
    auth = "required" if request.app.state.settings.auth_required else "open"
    failed = {name: problem for name, problem in checks.items() if problem != "ok"}
    if failed:
        detail = "; ".join(f"{name}: {problem}" for name, problem in failed.items())
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "detail": detail, "checks": checks, "auth": auth},
        )
    return JSONResponse(content={"status": "ready", "checks": checks, "auth": auth})


async def _run_check(check: Any, arg: Any) -> str:
    try:
        problem: str | None = await asyncio.wait_for(
            asyncio.to_thread(check, arg), timeout=CHECK_TIMEOUT_S
        )
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure to reach it is the answer, not a 500
        logger.warning("readiness check %s failed: %s", check.__name__, exc)
        return f"unreachable ({type(exc).__name__}: {_first_line(exc)})"
    return problem or "ok"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _check_database(engine: Engine) -> str | None:
    return schema_state(engine).problem


def _check_broker(broker: Broker) -> str | None:
    broker.check()
    return None
