"""Every error the API answers with, in one shape: `{"detail": "<one line for a human>"}`,
and for 422 also `"errors": [{"field", "in", "reason"}]` naming each bad field and why.

Error bodies are bounded: at most MAX_ERRORS fields, each name and reason cut to a few hundred
characters, the detail to MAX_DETAIL; a megabyte of bad input never comes back as a megabyte
(or four) of error.

`detail` is what FastAPI itself uses, so generic HTTP clients show something sensible; the
`errors` list is for programs. Every 422 goes through one path: code that finds a bad field
raises InvalidFields (or calls `invalid`), FastAPI's own validation errors are converted, and
both become the same body. No handler ever puts a stack trace in a response: an unexpected
exception is answered with a plain 500 by Starlette's ServerErrorMiddleware, through the
handler below, and the server logs it with its traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.middleware import SECURITY_HEADERS
from core.kinds.gan_spec import GanSpec
from core.spec import ExperimentSpec, ModelSpec
from core.store.errors import (
    AblationNotFound,
    AlreadyFinished,
    ExperimentNotFound,
    IdempotencyConflict,
    InvalidCursor,
)
from core.store.keys import KeyNotFound
from core.store.quotas import QuotaExceeded

logger = logging.getLogger(__name__)

# Where a FastAPI validation error's location starts: the part of the request it came from.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
MAX_ERRORS = 20
MAX_FIELD = 120
MAX_REASON = 400
MAX_DETAIL = 1000


def clip(text: str, most: int) -> str:
    """`text` cut to `most` characters, saying how long it was."""
    if len(text) <= most:
        return text
    return f"{text[: max(0, most - 40)]}... ({len(text):,} characters)"


def field_path(loc: Iterable[str | int]) -> str:
    """("model", "hidden", 0) -> "model.hidden[0]"."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def field_error(field: str, reason: str, source: str = "body") -> dict[str, str]:
    return {"field": clip(field, MAX_FIELD), "in": source, "reason": clip(reason, MAX_REASON)}


class InvalidFields(Exception):
    """Input that passed FastAPI's own checks but not ours: answered 422, each field named."""

    def __init__(self, errors: Sequence[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = list(errors)


def invalid(field: str, reason: str, source: str = "query") -> NoReturn:
    """Refuse one field of the request."""
    raise InvalidFields([field_error(field, reason, source)])


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


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # pydantic prefixes a validator's own message; the message alone reads better.
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown field: not part of the spec (a typo?)"
    if error.get("type") == "json_invalid":
        detail = (error.get("ctx") or {}).get("error")
        return f"the body is not valid JSON ({detail})" if detail else "the body is not valid JSON"
    return message


def from_request_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI's validation errors (loc starts with body/query/path/...) in our shape."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        source = str(loc.pop(0)) if loc and loc[0] in _SOURCES else "body"
        if error.get("type") == "json_invalid":
            loc = []  # the location is a character offset, not a field
        out.append(field_error(field_path(loc) or source, _reason(error), source))
    return out


# Model-level checks of the spec have no location of their own; their messages start with
# the knob they are about ("loss=bce needs ...", "momentum applies to ..."): that names it.
_LEADING_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*(?:\[\d+\])?)(?:=| )")
_SECTION_FIELDS: dict[str, frozenset[str]] = {
    "": frozenset(ExperimentSpec.model_fields) | frozenset(GanSpec.model_fields),
    "model": frozenset(ModelSpec.model_fields),
}


def from_spec_errors(exc: ValidationError) -> list[dict[str, str]]:
    """An ExperimentSpec's validation errors, each naming the spec field it is about."""
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        reason = _reason(dict(error))
        field = field_path(error["loc"])
        match = _LEADING_FIELD.match(reason) if error["type"] == "value_error" else None
        if match:
            head = re.split(r"[.\[]", match.group(1))[0]
            if head in _SECTION_FIELDS.get(field, frozenset()):
                field = f"{field}.{match.group(1)}" if field else match.group(1)
        out.append(field_error(field or "spec", reason))
    return out


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
    app.add_exception_handler(ExperimentNotFound, _on_not_found)
    app.add_exception_handler(AblationNotFound, _on_not_found)
    app.add_exception_handler(KeyNotFound, _on_not_found)
    app.add_exception_handler(AlreadyFinished, _on_conflict)
    app.add_exception_handler(IdempotencyConflict, _on_conflict)
    app.add_exception_handler(QuotaExceeded, _on_quota)
    app.add_exception_handler(InvalidCursor, _on_invalid_cursor)
    app.add_exception_handler(InvalidFields, _on_invalid_fields)
    app.add_exception_handler(OperationalError, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
