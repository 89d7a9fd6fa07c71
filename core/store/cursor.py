"""Opaque cursors for keyset paging: the sort position of the last row of a page.

Two kinds: the ablation listing's (created_at, id), newest first; and the experiment
listing's (sort, value, created_at, id), which names the sort it was issued for, so a cursor
from one sort order can't silently skip or repeat rows in another.

A cursor is base64 of JSON, so clients treat it as a token. Decoding checks everything before
trusting it (length first, then the exact shape), so anything but a cursor this server issued
raises InvalidCursor, which every listing answers with the same 422.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import datetime
from typing import Any

from core.store.clock import as_utc
from core.store.errors import InvalidCursor, StoreError

# Longer than any cursor we issue (a sort name, a float, a timestamp and a 32-hex id), short
# enough that decoding a hostile one costs nothing.
MAX_CURSOR_LENGTH = 256
_SORT = re.compile(r"^-?[a-z_]{1,32}$")
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_ID = re.compile(r"^[0-9a-f]{1,32}$")


def _pack(items: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(items).encode()).decode().rstrip("=")


def _unpack(cursor: str, length: int) -> list[Any]:
    """The flat JSON list of `length` items a cursor encodes; InvalidCursor for anything else.
    Checked by length, alphabet and shape before anything nested could be parsed."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not _ALPHABET.match(cursor):
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b'["') or raw.count(b"[") != 1:
            raise InvalidCursor()
        items = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not isinstance(items, list) or len(items) != length:
        raise InvalidCursor()
    return items


def _aware(text: Any) -> datetime:
    """An ISO timestamp with its time zone; InvalidCursor for anything else."""
    try:
        when = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise InvalidCursor() from None
    if when.tzinfo is None:
        raise InvalidCursor()
    return when


def encode_cursor(created_at: datetime, row_id: str) -> str:
    created = as_utc(created_at)
    assert created is not None
    return _pack([created.isoformat(), row_id])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) as encoded, created_at aware UTC; InvalidCursor for anything else."""
    created, last_id = _unpack(cursor, 2)
    when = _aware(created)
    if not isinstance(last_id, str) or not _ID.match(last_id):
        raise InvalidCursor()
    return when, last_id


class CursorSortMismatch(InvalidCursor):
    """A well-formed cursor issued for another sort order than the request's."""

    def __init__(self, issued_for: str, requested: str) -> None:
        StoreError.__init__(
            self,
            f"cursor was issued for sort={issued_for}, but this request sorts by {requested}: "
            "page a listing with the sort its cursor came from, or start again without a cursor",
        )


def encode_sort_cursor(sort: str, value: float | None, created_at: datetime, row_id: str) -> str:
    """The position of a row in the listing sorted by `sort`; `value` is its sort value."""
    created = as_utc(created_at)
    assert created is not None
    return _pack([sort, value, created.isoformat(), row_id])


def decode_sort_cursor(cursor: str, sort: str) -> tuple[float | None, datetime, str]:
    """(value, created_at, id) of a cursor issued for `sort`. InvalidCursor for anything that
    is not such a cursor; CursorSortMismatch for a cursor of another sort order."""
    issued_for, value, created, last_id = _unpack(cursor, 4)
    when = _aware(created)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if (
        not isinstance(issued_for, str)
        or not _SORT.match(issued_for)
        or not (value is None or (number and math.isfinite(value)))
        or not isinstance(last_id, str)
        or not _ID.match(last_id)
    ):
        raise InvalidCursor()
    if issued_for != sort:
        raise CursorSortMismatch(issued_for, sort)
    return (None if value is None else float(value)), when, last_id
