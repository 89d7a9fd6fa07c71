"""The error answers every route documents (`responses=`), and the bodies that are not a
resource: `{}` for a POST that takes no fields, the readiness check's answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NoFields(BaseModel):
    """The body of a POST that takes no fields (cancel): `{}`. A body is asked for, with
    Content-Type: application/json, so that no other web site can send the request from a
    browser (see api/middleware.py); sending none, with that content type, works as well."""

    model_config = ConfigDict(extra="forbid")


# For a route's `openapi_extra`: the `{}` body is documented as required (it is how a client
# shows the request is its own), though an empty body is taken too.
BODY_REQUIRED: dict[str, Any] = {"requestBody": {"required": True}}


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in one line for a person.")


class FieldError(BaseModel):
    field: str = Field(description="The field, e.g. model.hidden[0], overrides.epochs, cursor.")
    in_: str = Field(alias="in", description="body, query, path or header.")
    reason: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError]


class NotReadyBody(BaseModel):
    status: str
    detail: str
    checks: dict[str, str] = Field(description="Each dependency: ok, or what is wrong with it.")


Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What each error status means, for the `responses=` of the routes (api/openapi.py adds those
# every endpoint can answer: 400, 422, and 413 and 415 for POSTs).
NOT_FOUND: Responses = {404: _error("No such experiment or ablation.")}
CONFLICT: Responses = {409: _error("Not possible in the resource's current state (said why).")}
DATABASE_DOWN: Responses = {
    503: _error("The database is unavailable; retry after Retry-After seconds.")
}
INVALID: Responses = {
    422: {"model": ValidationErrorBody, "description": "Invalid fields, each named."}
}
BAD_REQUEST: Responses = {
    400: _error(
        "A Host this server does not answer to, control characters in the path, "
        "or a body that could not be read."
    )
}
TOO_LARGE: Responses = {413: _error("The body is larger than TRAINLAB_MAX_BODY_BYTES.")}
NOT_JSON: Responses = {415: _error("A POST without Content-Type: application/json.")}


class TooManyBody(BaseModel):
    """A 429: a request rate limit (`scope` key or address, `limit` like "600 per 1 minute"),
    an event-stream cap, or a key's quota (`quota`, its `limit` and the key's `current` use).
    Retry-After says when to try again."""

    detail: str
    scope: str | None = None
    quota: str | None = None
    limit: str | float | None = None
    current: float | None = None


TOO_MANY: Responses = {
    429: {
        "model": TooManyBody,
        "description": "Over a rate limit or a quota; Retry-After says when to retry.",
    }
}
# The routes that read one stored resource: it may be missing, and the database may be away.
ERROR_RESPONSES: Responses = {**NOT_FOUND, **DATABASE_DOWN}
