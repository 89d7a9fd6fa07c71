"""Query values that are lists: comma-separated experiment ids and record indices. One parser
for each, used by every route that takes one, so each is refused the same way (a 422 naming
the parameter and why) before anything is read from the store."""

from __future__ import annotations

import re

from api.errors import invalid

_INDEX = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() also takes "²"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
