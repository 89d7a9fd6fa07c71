"""The listing cursors: what they carry round-trips exactly, and anything else is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from core.store.cursor import (
    CursorSortMismatch,
    decode_cursor,
    decode_sort_cursor,
    encode_cursor,
    encode_sort_cursor,
)
from core.store.errors import InvalidCursor

WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
ROW = "0123456789abcdef0123456789abcdef"


def _raw(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_sort_cursor_round_trips_the_value_exactly() -> None:
    value = 0.1 + 0.2  # not a short decimal: must come back bit for bit
    cursor = encode_sort_cursor("-test_accuracy", value, WHEN, ROW)
    assert decode_sort_cursor(cursor, "-test_accuracy") == (value, WHEN, ROW)
    empty = encode_sort_cursor("final_loss", None, WHEN, ROW)
    assert decode_sort_cursor(empty, "final_loss") == (None, WHEN, ROW)
    assert decode_cursor(encode_cursor(WHEN, ROW)) == (WHEN, ROW)


def test_a_cursor_of_another_sort_is_refused_naming_both() -> None:
    cursor = encode_sort_cursor("-test_accuracy", 0.9, WHEN, ROW)
    with pytest.raises(CursorSortMismatch, match=r"sort=-test_accuracy.*sorts by created_at"):
        decode_sort_cursor(cursor, "created_at")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "x" * 300,
        _raw(["-test_accuracy", float("nan"), WHEN.isoformat(), ROW]),
        _raw(["-test_accuracy", True, WHEN.isoformat(), ROW]),
        _raw(["-test_accuracy", "0.9", WHEN.isoformat(), ROW]),
        _raw(["-test_accuracy", 0.9, "2026-03-01T12:30:15", ROW]),  # no time zone
        _raw(["-test_accuracy", 0.9, WHEN.isoformat(), "NOT-AN-ID"]),
        _raw(["-test_accuracy", 0.9, WHEN.isoformat()]),
        _raw(["-test_accuracy", [0.9], WHEN.isoformat(), ROW]),
        _raw({"sort": "-test_accuracy"}),
        encode_cursor(WHEN, ROW),  # the ablation listing's kind
    ],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_sort_cursor(cursor, "-test_accuracy")
