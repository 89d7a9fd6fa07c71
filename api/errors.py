"""Every error the API answers with, in one shape: `{"detail": "<one line for a human>"}`,
and for 422 also `"errors": [{"field", "in", "reason"}]` naming each bad field and why.

Error bodies are bounded: at most MAX_ERRORS fields, each name and reason cut to a few hundred
characters, the detail to MAX_DETAIL; a megabyte of bad input never comes back as a megabyte
(or four) of error.

`detail` is what FastAPI itself uses, so generic HTTP clients show something sensible; the
`errors` list is for programs. The services raise core's domain errors (core/errors.py) and
know nothing of HTTP; the handlers here translate them: NotFound 404, Conflict 409, QuotaExceeded
429 with Retry-After. Every 422 goes through one path: code that finds a bad field raises
InvalidFields (or calls `invalid`), FastAPI's own validation errors are converted, and both
become the same body. No handler ever puts a stack trace in a response: an unexpected
exception is answered with a plain 500 by Starlette's ServerErrorMiddleware, through the
handler below, and the server logs it with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.http.headers import SECURITY_HEADERS
from core.errors import Conflict, InvalidFields, NotFound, clip, field_error, from_request_errors
from core.store.errors import InvalidCursor
from core.store.faults import is_disk_full
from core.store.quotas import QuotaExceeded

logger = logging.getLogger(__name__)

MAX_ERRORS = 20
MAX_DETAIL = 1000


def _unprocessable(errors: Sequence[dict[str, str]]) -> JSONResponse:
    shown = [field_error(e["field"], e["reason"], e["in"]) for e in errors[:MAX_ERRORS]]
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in shown)
    more = f"; and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
    detail = clip(f"invalid request: {summary}", MAX_DETAIL - len(more)) + more
    return JSONResponse(status_code=422, content={"detail": detail, "errors": shown})


def error_body(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The `{"detail": ...}` answer of every error but 422."""
    return JSONResponse(
        status_code=status, content={"detail": clip(detail, MAX_DETAIL)}, headers=headers
    )


async def _on_request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _unprocessable(from_request_errors(exc.errors()))


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_body(exc.status_code, str(exc.detail), headers)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path, found by asking the router about each.
    Starlette's 405 names only the first route whose path matched, so GET /experiments would
    be missing from a 405 for PUT /experiments."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


async def _on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return error_body(404, str(exc))


async def _on_quota(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuotaExceeded)
    return JSONResponse(
        status_code=429,
        content={
            "detail": str(exc),
            "quota": exc.quota,
            "limit": exc.limit,
            "current": exc.current,
        },
        headers={"Retry-After": str(exc.retry_after_s)},
    )


async def _on_conflict(_: Request, exc: Exception) -> JSONResponse:
    return error_body(409, str(exc))


async def _on_invalid_cursor(_: Request, exc: Exception) -> JSONResponse:
    return _unprocessable([field_error("cursor", str(exc), "query")])


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    logger.error("database error on %s %s: %s", request.method, request.url.path, exc)
    if is_disk_full(exc):
        return error_body(
            503,
            "the database is out of space: nothing was stored; try again once an operator "
            "has freed space (`trainlab prune`, a larger disk)",
            {"Retry-After": "30"},
        )
    return error_body(503, "the database is unavailable; try again shortly", {"Retry-After": "5"})


async def _on_invalid_fields(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidFields)
    return _unprocessable(exc.errors)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware calls this, then re-raises so the server (uvicorn)
    # logs the traceback; this line adds which request it was. The client sees none of it.
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    # This answer comes from Starlette's outermost middleware, past the one that adds the
    # security headers to every other answer: it adds them itself.
    return JSONResponse(
        status_code=500,
        content={"detail": "internal server error; it has been logged on the server"},
        headers=dict(SECURITY_HEADERS),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(NotFound, _on_not_found)
    app.add_exception_handler(Conflict, _on_conflict)
    app.add_exception_handler(QuotaExceeded, _on_quota)
    app.add_exception_handler(InvalidCursor, _on_invalid_cursor)
    app.add_exception_handler(InvalidFields, _on_invalid_fields)
    app.add_exception_handler(OperationalError, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
