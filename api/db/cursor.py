"""Opaque cursors for newest-first paging: the (created_at, id) of the last row of a page.

A cursor is base64 of JSON, so clients treat it as a token; decoding anything else raises
ValueError, which each listing turns into its own 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from api.db.session import as_utc


def encode_cursor(created_at: datetime, row_id: str) -> str:
    created = as_utc(created_at)
    assert created is not None
    raw = json.dumps([created.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) as encoded; created_at is aware UTC for every cursor we issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, last_id = json.loads(raw)
        when = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("not a cursor this API issued") from None
    return when, str(last_id)
