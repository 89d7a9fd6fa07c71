"""422 answers for checks a pydantic model cannot express (ids that must exist together,
an index that must fit the data), in the same shape FastAPI gives its own validation errors."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi.exceptions import RequestValidationError


def unprocessable(loc: tuple[str | int, ...], message: str, value: Any = None) -> NoReturn:
    raise RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def id_list(text: str, field: str, *, most: int) -> list[str]:
    """`a,b,c` -> ["a", "b", "c"], order kept, repeats dropped, 1..most ids."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        unprocessable(("query", field), "give at least one experiment id", text)
    if len(ids) > most:
        unprocessable(("query", field), f"{len(ids)} experiments; compare at most {most}", text)
    return ids


def int_list(text: str, field: str, *, most: int) -> list[int]:
    """`19,20` -> [19, 20]; each a non-negative integer."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        unprocessable(("query", field), "expected comma-separated record indices", text)
    if not values or len(values) > most or min(values) < 0:
        unprocessable(("query", field), f"give 1..{most} record indices, each >= 0", text)
    return values
