"""GET /changes: a Server-Sent Event whenever what the experiment and ablation lists show
has changed (one created, claimed, training on, requeued, cancelled, finished, deleted), so
that a dashboard refreshes its lists when there is something new instead of on a timer.

Events, each a JSON `data:` line:
- `changes` {"version", "experiments", "ended", "ablations"}: at connect, then whenever the
  fingerprint (api/services/changes.py) moves, at most once per CHANGES_POLL_S (2 s).
  `ended` counts finished experiments: a client may refresh heavier views only when it grows.

Every caller may read every list (viewers read everything), so the feed is the same for all:
the store is read once per interval per process, however many clients listen. A stream
closes after TRAINLAB_MAX_STREAM_S (the client reconnects and gets the current version at
once), or when the store stops answering; a caller holds at most TRAINLAB_MAX_EVENT_STREAMS
of these streams, counted apart from the per-experiment ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.auth import Viewer
from api.deps import SettingsDep
from api.http.sse import sse_event
from api.routes.events import KEEPALIVE_S, RETRY_MS, event_stream
from api.schemas import DATABASE_DOWN
from api.services.changes import ChangeMark, ChangeWatch
from core.store.faults import is_store_error

logger = logging.getLogger(__name__)

router = APIRouter(tags=["experiments"])


def _event(mark: ChangeMark) -> str:
    return sse_event("changes", asdict(mark))


async def _feed(
    request: Request, watch: ChangeWatch, first: ChangeMark, max_seconds: float
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n{_event(first)}"
    deadline = time.monotonic() + max_seconds
    sent = first.version
    last_write = time.monotonic()
    while time.monotonic() + watch.every_s < deadline:
        await anyio.sleep(watch.every_s)
        if await request.is_disconnected():
            return
        try:
            mark = await watch.current()
        except Exception as exc:
            if not is_store_error(exc):
                raise
            logger.warning(
                "change feed: the store did not answer (%s); closing", type(exc).__name__
            )
            return  # the client reconnects, or falls back to polling
        if mark.version != sent:
            sent = mark.version
            last_write = time.monotonic()
            yield _event(mark)
        elif time.monotonic() - last_write >= KEEPALIVE_S:
            last_write = time.monotonic()
            yield ": keep-alive\n\n"


@router.get(
    "/changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **DATABASE_DOWN},
)
async def changes(request: Request, principal: Viewer, settings: SettingsDep) -> StreamingResponse:
    """An event whenever the experiment or ablation lists have changed (see the `changes`
    event); the stream lasts at most TRAINLAB_MAX_STREAM_S, then the client reconnects."""
    watch: ChangeWatch = request.app.state.change_watch
    first = await watch.current()
    stream = _feed(request, watch, first, settings.max_stream_s)
    return event_stream(request, principal, request.app.state.change_slots, stream)
