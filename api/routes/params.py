"""The parameters routes share, each with its bounds in the schema, so that anything outside
them is a 422 naming the parameter (never a 500 from a number too big for the database or
numpy), checked before anything is read from the store.

- ids in the path; step numbers, offsets and other integers (at most 2**31 - 1: steps and record
  indices are stored as 32-bit integers); cursors;
- lists in the query: comma-separated experiment ids and record indices, one parser for each.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query

from core.errors import invalid
from core.labels import MAX_LABEL_LENGTH
from core.store.cursor import MAX_CURSOR_LENGTH

MAX_INT = 2**31 - 1
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_INDEX = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: str.isdigit() also takes "²"
_ID = re.compile(ID_PATTERN)

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description="An experiment's id.")
]
AblationId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description="An ablation's id.")
]
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
