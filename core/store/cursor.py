"""Opaque cursors for newest-first paging: the (created_at, id) of the last row of a page.

A cursor is base64 of JSON, so clients treat it as a token. Decoding checks everything before
trusting it (length first, then the exact shape), so anything but a cursor this server issued
raises InvalidCursor, which every listing answers with the same 422.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime

from core.store.clock import as_utc
from core.store.errors import InvalidCursor

# Longer than any cursor we issue (a timestamp and a 32-hex id), short enough that decoding
# a hostile one costs nothing.
MAX_CURSOR_LENGTH = 200
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_ID = re.compile(r"^[0-9a-f]{1,32}$")


def encode_cursor(created_at: datetime, row_id: str) -> str:
    created = as_utc(created_at)
    assert created is not None
    raw = json.dumps([created.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) as encoded, created_at aware UTC; InvalidCursor for anything else."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not _ALPHABET.match(cursor):
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # A flat two-string list: checked by shape before anything nested could be parsed.
        if not raw.startswith(b'["') or raw.count(b"[") != 1:
            raise InvalidCursor()
        created, last_id = json.loads(raw)
        when = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if when.tzinfo is None or not isinstance(last_id, str) or not _ID.match(last_id):
        raise InvalidCursor()
    return when, last_id
