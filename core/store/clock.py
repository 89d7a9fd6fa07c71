"""Time as the store keeps it: timezone-aware UTC, always.

SQLModel's datetime columns store aware values as `timestamptz` on PostgreSQL and as naive UTC
text on SQLite; `as_utc` makes what comes back aware again, so comparisons and JSON answers
read the same on either backend.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as every store write records it."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A timestamp read from the store, made timezone-aware (UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
