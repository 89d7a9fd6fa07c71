"""The OpenAPI document: FastAPI's, made to say what the server really answers.

- Every 422 is documented with the body the API sends (`{"detail", "errors": [{"field", "in",
  "reason"}]}`), not FastAPI's default validation-error shape.
- The answers every endpoint can give whatever its route says are added to each: 400 (a Host
  the server does not answer to, control characters in the path, an unreadable body), 429 (a
  rate limit or quota) but on the probes, and for each POST 413 (body too large) and 415 (not
  JSON).
- POST /experiments documents its two body forms (a full spec, or a preset with overrides),
  which the route reads from one JSON object.
- The API key requirement says what this server does: required when it requires keys, optional
  (a key, or nothing) on an open server.
- An optional parameter is one that may be left out: FastAPI's `anyOf [..., null]` is dropped,
  since a query string or header cannot carry a JSON null (a client would send "null").

Built once, on first request of /openapi.json, and cached by FastAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.ratelimit import EXEMPT_PATHS as RATE_EXEMPT
from api.schemas import (
    BAD_REQUEST,
    NOT_JSON,
    TOO_LARGE,
    TOO_MANY,
    ErrorBody,
    ExperimentCreate,
    ExperimentSubmitSpec,
    TooManyBody,
    ValidationErrorBody,
)

_REF = "#/components/schemas/{model}"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Models the document refers to although no route declares them as its own body or answer.
_EXTRA_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    TooManyBody,
    ValidationErrorBody,
    ExperimentSubmitSpec,
    ExperimentCreate,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _error_response(entry: dict[str, Any]) -> dict[str, Any]:
    model: type[BaseModel] = entry["model"]
    return {
        "description": entry["description"],
        "content": {"application/json": {"schema": _ref(model)}},
    }


def _add_components(schema: dict[str, Any]) -> None:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _EXTRA_MODELS], ref_template=_REF
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, body in definitions.get("$defs", {}).items():
        components.setdefault(name, body)
    # FastAPI's own validation-error shapes are never sent.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _document_submit_forms(operation: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        content["schema"] = {
            "anyOf": [_ref(ExperimentSubmitSpec), _ref(ExperimentCreate)],
            "title": "Submission",
        }


def _not_nullable(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if not options:
        return
    kept = [option for option in options if option.get("type") != "null"]
    if len(kept) == 1 and len(kept) < len(options):
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        parameter["schema"] = {**kept[0], **rest}


def _fix_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        _not_nullable(parameter)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = {
            "description": "Invalid fields, each named with where it was and why.",
            "content": {"application/json": {"schema": _ref(ValidationErrorBody)}},
        }
    extra = dict(BAD_REQUEST)
    if path not in RATE_EXEMPT:
        extra.update(TOO_MANY)
    if method == "post":
        extra.update(TOO_LARGE)
        extra.update(NOT_JSON)
    for status, entry in extra.items():
        responses.setdefault(str(status), _error_response(entry))
    # A request the HTTP server itself cannot parse (a request line past its limits) is refused
    # by uvicorn before the app sees it, as text.
    responses["400"].setdefault("content", {})["text/plain"] = {"schema": {"type": "string"}}
    if (path, method) == ("/experiments", "post"):
        _document_submit_forms(operation)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    open_server = not app.state.settings.auth_required
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _fix_operation(path, method, item[method])
                if open_server and "security" in item[method]:
                    # Keys are optional here: a request may carry one, or none.
                    item[method]["security"].append({})
    _add_components(schema)
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
