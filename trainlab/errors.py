"""The errors a call raises: one class per way the server can refuse it, all ApiError.

`ConnectionFailed` (the server could not be reached) is not an HTTP answer and is not an
ApiError; both derive from TrainlabError, so `except TrainlabError` catches every failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


class TrainlabError(Exception):
    """Anything the client raises on purpose."""


class ConnectionFailed(TrainlabError):
    """The server could not be reached (refused, timed out, cut)."""


class ApiError(TrainlabError):
    """The server answered with an error status; `detail` is its one-line reason."""

    def __init__(self, status_code: int, detail: str, body: object = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field of a 422: where (`in_`: body, query, path, header) and why."""

    field: str
    in_: str
    reason: str


class ValidationError(ApiError):
    """422: `errors` names each invalid field and its reason."""

    def __init__(self, status_code: int, detail: str, body: object = None) -> None:
        super().__init__(status_code, detail, body)
        raw = body.get("errors", []) if isinstance(body, dict) else []
        self.errors = [
            FieldProblem(str(e.get("field", "")), str(e.get("in", "")), str(e.get("reason", "")))
            for e in raw
            if isinstance(e, dict)
        ]


class BadRequest(ApiError):
    """400, 413 or 415: the request itself could not be taken."""


class Unauthorized(ApiError):
    """401: no API key, or one the server does not know (or has revoked)."""


class Forbidden(ApiError):
    """403: the key's role may not do this, or the resource is another account's."""


class NotFound(ApiError):
    """404: no such experiment, ablation, key or model."""


class Conflict(ApiError):
    """409: not possible in the resource's current state, or a reused Idempotency-Key with a
    different request."""


class RateLimited(ApiError):
    """429 after the client's own retries: `retry_after` seconds until the server takes more."""

    def __init__(
        self, status_code: int, detail: str, body: object = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, detail, body)
        self.retry_after = retry_after


class ServerUnavailable(ApiError):
    """5xx: the server (or its database) is down for now; `retry_after` when it said."""

    def __init__(
        self, status_code: int, detail: str, body: object = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, detail, body)
        self.retry_after = retry_after


def retry_after_of(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the server sends seconds, never an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ApiError:
    """The ApiError for an error answer (response.read() must have been called)."""
    status = response.status_code
    try:
        body: object = response.json()
    except ValueError:
        body = response.text
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail) if detail is not None else (str(body) or response.reason_phrase)
    if status == 429:
        return RateLimited(status, text, body, retry_after_of(response))
    if status >= 500:
        return ServerUnavailable(status, text, body, retry_after_of(response))
    kinds: dict[int, type[ApiError]] = {
        400: BadRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        413: BadRequest,
        415: BadRequest,
        422: ValidationError,
    }
    return kinds.get(status, ApiError)(status, text, body)
