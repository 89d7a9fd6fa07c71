"""The parameters routes share, each with its bounds in the schema, so that anything outside
them is a 422 naming the parameter (never a 500 from a number too big for the database or
numpy), checked before anything is read from the store.

- ids in the path, full or short (a unique prefix, resolved here once for every route);
- step numbers, offsets and other integers (at most 2**31 - 1: steps and record indices are
  stored as 32-bit integers); cursors;
- lists in the query: comma-separated experiment ids and record indices, one parser for each;
- the headers of a conditional read (If-None-Match) and of an idempotent POST.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

from fastapi import Depends, Header, Path, Query, Request
from fastapi.dependencies.models import Dependant
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from core.errors import invalid
from core.labels import MAX_LABEL_LENGTH
from core.store.cursor import MAX_CURSOR_LENGTH
from core.store.short_ids import FULL_LENGTH, MIN_PREFIX, Kind, resolve_id

MAX_INT = 2**31 - 1
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_INDEX = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() also takes "²"
_ID = re.compile(ID_PATTERN)

_SHORT = f"; or any unique prefix of it, at least {MIN_PREFIX} characters (a short id)"
_EXPERIMENT_ID = "An experiment's id" + _SHORT
_ABLATION_ID = "An ablation's id" + _SHORT
_SWEEP_ID = "A sweep's id" + _SHORT


def _id_path(description: str) -> Any:
    return Path(min_length=MIN_PREFIX, max_length=64, pattern=ID_PATTERN, description=description)


async def _resolved(request: Request, kind: Kind, given: str) -> str:
    """The full id for `given` (see core.store.short_ids.resolve_id); a full id costs no query."""
    if len(given) >= FULL_LENGTH:
        return given

    def lookup() -> str:
        with Session(request.app.state.engine) as session:
            return resolve_id(session, kind, given)

    return await run_in_threadpool(lookup)


async def _experiment_id(
    request: Request, experiment_id: Annotated[str, _id_path(_EXPERIMENT_ID)]
) -> str:
    return await _resolved(request, "experiment", experiment_id)


async def _ablation_id(
    request: Request, ablation_id: Annotated[str, _id_path(_ABLATION_ID)]
) -> str:
    return await _resolved(request, "ablation", ablation_id)


async def _sweep_id(request: Request, sweep_id: Annotated[str, _id_path(_SWEEP_ID)]) -> str:
    return await _resolved(request, "sweep", sweep_id)


# An id in the path, full or short: the route gets the full id (409 for a prefix of several).
ExperimentId = Annotated[str, Depends(_experiment_id)]
AblationId = Annotated[str, Depends(_ablation_id)]
SweepId = Annotated[str, Depends(_sweep_id)]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        # Checked by the cursor decoder (one refusal for any cursor it did not issue).
        json_schema_extra={"pattern": r"^[A-Za-z0-9_-]+$"},
        description="next_cursor of the previous page.",
    ),
]
# Named `series` in the query; routes call the argument otherwise (core.store.series is a module).
SeriesName = Annotated[
    str | None,
    Query(
        alias="series",
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="Which series: a classifier records `loss`, a GAN `discriminator` (the "
        "default) and `generator`.",
    ),
]
TagFilter = Annotated[
    str | None, Query(min_length=1, max_length=MAX_LABEL_LENGTH, description="Only with this tag.")
]


def _list_pattern(item: str, most: int) -> str:
    """1..most comma-separated items, as the parsers below read them (blanks around items and
    empty items are skipped)."""
    return rf"^[\s,]*{item}[\s,]*(,[\s,]*{item}[\s,]*){{0,{most - 1}}}$"


def id_list_pattern(most: int) -> str:
    return _list_pattern("[A-Za-z0-9_-]{1,64}", most)


def record_list_pattern(most: int) -> str:
    return _list_pattern("[0-9]{1,9}", most)


def id_list(text: str, field: str, *, most: int) -> list[str]:
    """`a,b,c` -> ["a", "b", "c"], order kept, repeats dropped, 1..most ids."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        invalid(field, "give at least one experiment id")
    if len(parts) > most:
        invalid(field, f"{len(parts)} experiments; compare at most {most}")
    for part in parts:
        if not _ID.match(part):
            invalid(field, f"{part[:40]!r} is not an experiment id")
    return list(dict.fromkeys(parts))


def record_list(
    text: str,
    field: str,
    *,
    most: int,
    available: int | None = None,
    scope: str = "this run has records",
) -> list[int]:
    """`19,20` -> [19, 20]: 1..most test record indices, each a whole number below
    `available` when that is known (`scope` says whose records those are)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        invalid(field, "give at least one record index")
    if len(parts) > most:
        invalid(field, f"{len(parts)} records asked for; at most {most} per request")
    indices = []
    for part in parts:
        if not _INDEX.match(part):
            invalid(field, f"{part[:40]!r} is not a record index (a whole number >= 0)")
        index = int(part)
        if available is not None and index >= available:
            invalid(field, f"record {index} is out of range: {scope} 0..{available - 1}")
        indices.append(index)
    return indices


# What pydantic reads as an int from text also includes "1_0", "+10", " 10" and "10.0"; a
# parameter is refused unless written the one plain way, so a value has a single spelling.
_CANONICAL_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")


def _int_params(route: object) -> tuple[tuple[str, str], ...]:
    """(where, name) of the route's integer query and path parameters, its dependencies'
    included; worked out once per route."""
    found = getattr(route, "_int_params", None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    dependant: Dependant | None = getattr(route, "dependant", None)
    params: list[tuple[str, str]] = []
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        for where, fields in (("query", current.query_params), ("path", current.path_params)):
            params += [(where, f.alias) for f in fields if _is_int(f.field_info.annotation)]
        stack.extend(current.dependencies)
    found = tuple(params)
    route._int_params = found  # type: ignore[attr-defined]
    return found


def _is_int(annotation: object) -> bool:
    if annotation is int:
        return True
    return int in get_args(annotation) and all(
        arg in (int, type(None)) for arg in get_args(annotation)
    )


async def canonical_integers(request: Request) -> None:
    """422 for an integer parameter not written as plain digits (see _CANONICAL_INT)."""
    for where, name in _int_params(request.scope.get("route")):
        if where == "query":
            values = request.query_params.getlist(name)
        else:
            values = [str(request.path_params.get(name, "0"))]
        for value in values:
            if not _CANONICAL_INT.match(value):
                reason = f"{value[:40]!r} is not a whole number written in plain digits"
                invalid(name, reason, where)


CANONICAL_INTEGERS = Depends(canonical_integers)


def idempotency_header(what: str) -> object:
    """The Idempotency-Key header of a POST that creates `what` (printable ASCII, no leading or
    trailing space): a retry with the same key answers the same `what`."""
    return Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]([ -~]*[!-~])?$",
        description=f"A retried POST with the same key returns the same {what}; "
        "a different body with a used key is 409.",
    )


IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=2000,
        description="The ETag of the answer the client holds: 304 without a body while it "
        "is still the answer.",
    ),
]
