"""Server-Sent Events, formatted once for every stream (the experiment stream, the change
feed)."""

from __future__ import annotations

import json
from typing import Any


def sse_event(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    """One Server-Sent Event: its id (what a reconnect resumes from) when given, its kind and
    one JSON `data:` line."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    head = "" if event_id is None else f"id: {event_id}\n"
    return f"{head}event: {kind}\ndata: {payload}\n\n"
