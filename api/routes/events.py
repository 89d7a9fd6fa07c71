"""Live progress of one experiment as Server-Sent Events.

Events, each a JSON `data:` line:
- `status`   {"status", "error"}: at connect and on every change;
- `progress` {"step", "total_steps"}: on change;
- `loss`     {"steps": [...], "values": [...]}: new loss points, in step order;
- `end`      {"status", "error"}: after the last points of a finished run; then the stream closes.

A stream also closes after TRAINLAB_MAX_STREAM_S (the client reconnects and resumes).

Resuming: every event's `id` is the last loss step the client has been sent (0 before any).
Steps are strictly increasing, so reconnecting with `Last-Event-ID: N` (browsers send it on
their own) asks for exactly the points with step > N: no gap, no repeat. Status and progress are
snapshots and are simply sent again on reconnect.

The store is polled about twice a second, each poll in a worker thread with its own short
session, so a slow client never holds a database connection. Near a run's end (its last
steps due within a second at the pace its progress shows, or all taken and the test set being
evaluated) it is polled every 50 ms, for at most NEAR_END_S: the `end` event then follows the
outcome by tens of milliseconds rather than by up to half a second.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from api.auth import Viewer
from api.deps import EngineDep, SettingsDep
from api.http.sse import sse_event
from api.http.threads import run_in_threadpool
from api.ratelimit import StreamSlots, client_address
from api.routes.params import MAX_INT, ExperimentId
from api.schemas import ERROR_RESPONSES
from api.services.curves import json_floats
from core.errors import invalid
from core.identity import Principal
from core.settings import is_loopback
from core.store import series
from core.store.errors import ExperimentNotFound
from core.store.models import TERMINAL
from core.store.session import session_scope

router = APIRouter(tags=["experiments"])

POLL_S = 0.5
NEAR_END_POLL_S = 0.05
NEAR_END_S = 10.0
KEEPALIVE_S = 15.0
RETRY_MS = 1000
# Points per `loss` event: a finished 18,000-point series arrives in a few events of ~60 kB.
BATCH = 5000


class Pace:
    """When to poll next: POLL_S, or NEAR_END_POLL_S once the run's end is near."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None  # when the step last moved, and to what
        self.steps_per_s = 0.0
        self.near_end_since: float | None = None

    def next_poll_s(self, snapshot: Snapshot, now: float) -> float:
        if snapshot.status != "running" or snapshot.total_steps <= 0:
            return POLL_S
        if self.last is None or snapshot.step < self.last[1]:  # first look, or a resumed run
            self.last = (now, snapshot.step)
        elif snapshot.step > self.last[1]:
            self.steps_per_s = (snapshot.step - self.last[1]) / max(now - self.last[0], 1e-3)
            self.last = (now, snapshot.step)
        left = snapshot.total_steps - snapshot.step
        # Progress is stored about once a second: count the steps taken since it last moved.
        due_in_s = left / self.steps_per_s - (now - self.last[0]) if self.steps_per_s else None
        near = left <= 0 or (due_in_s is not None and due_in_s < 2 * POLL_S)
        if not near:
            self.near_end_since = None
            return POLL_S
        if self.near_end_since is None:
            self.near_end_since = now
        return NEAR_END_POLL_S if now - self.near_end_since < NEAR_END_S else POLL_S


# One poll: the run's state, then its points after the cursor (the store's one reader).
Snapshot = series.RunSeries


def _poll(engine: Engine, experiment_id: str, cursor: int) -> Snapshot | None:
    with session_scope(engine) as session:
        # The kind's first series: a classifier's loss, a GAN's discriminator.
        return series.read_run_series(session, experiment_id, since_step=cursor, series=None)


async def _stream(
    request: Request,
    engine: Engine,
    experiment_id: str,
    cursor: int,
    first: Snapshot,
    max_seconds: float,
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    # A stream lasts at most max_seconds, then closes; the client reconnects with its
    # Last-Event-ID and misses nothing. So no connection is held for the hours a run takes.
    deadline = time.monotonic() + max_seconds
    sent_status: tuple[str, str | None] | None = None
    sent_progress: tuple[int, int] | None = None
    last_write = time.monotonic()
    pace = Pace()
    snapshot: Snapshot | None = first
    while snapshot is not None:
        chunks: list[str] = []
        if (snapshot.status, snapshot.error) != sent_status:
            sent_status = (snapshot.status, snapshot.error)
            chunks.append(
                sse_event("status", {"status": snapshot.status, "error": snapshot.error}, cursor)
            )
        for start in range(0, int(snapshot.steps.size), BATCH):
            steps = [int(s) for s in snapshot.steps[start : start + BATCH]]
            values = json_floats(snapshot.values[start : start + BATCH])
            cursor = steps[-1]
            chunks.append(sse_event("loss", {"steps": steps, "values": values}, cursor))
        if (snapshot.step, snapshot.total_steps) != sent_progress:
            sent_progress = (snapshot.step, snapshot.total_steps)
            progress = {"step": snapshot.step, "total_steps": snapshot.total_steps}
            chunks.append(sse_event("progress", progress, cursor))
        if snapshot.status in TERMINAL:
            end = {"status": snapshot.status, "error": snapshot.error}
            chunks.append(sse_event("end", end, cursor))
            yield "".join(chunks)
            return
        if chunks:
            yield "".join(chunks)
            last_write = time.monotonic()
        elif time.monotonic() - last_write >= KEEPALIVE_S:
            yield ": keep-alive\n\n"  # a comment: keeps proxies from closing an idle stream
            last_write = time.monotonic()
        if await request.is_disconnected() or time.monotonic() >= deadline:
            return
        await anyio.sleep(pace.next_poll_s(snapshot, time.monotonic()))
        snapshot = await run_in_threadpool(_poll, engine, experiment_id, cursor)


EVENT_ID_PATTERN = r"^[0-9]{1,10}$"  # ASCII digits: int() would also take "٣" or "1_0"
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


def _cursor(header: str | None, query: int | None) -> int:
    """Where to resume: Last-Event-ID wins over since_step. An id past any step there can be
    (steps fit 31 bits) resumes after the last one: nothing more comes but the status."""
    if header is not None:
        if not _EVENT_ID.match(header):
            invalid("last-event-id", "must be an event id this stream sent (digits)", "header")
        return min(int(header), MAX_INT)
    return query or 0


async def released(
    stream: AsyncIterator[str], slots: StreamSlots, caller: str
) -> AsyncIterator[str]:
    """The stream, giving its slot back however it ends (finished, closed, disconnected)."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        slots.release(caller)


@router.get(
    "/experiments/{experiment_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **ERROR_RESPONSES},
)
async def experiment_events(
    experiment_id: ExperimentId,
    request: Request,
    principal: Viewer,
    engine: EngineDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            pattern=EVENT_ID_PATTERN,
            description="The id of the last event received: resume after it (browsers send it "
            "on their own when they reconnect).",
        ),
    ] = None,
    since_step: Annotated[
        int | None,
        Query(ge=0, le=MAX_INT, description="Resume after this step (Last-Event-ID wins)."),
    ] = None,
) -> StreamingResponse:
    """Loss points, progress and status of one experiment as they happen, until it ends. A
    key (or an address other than loopback) holds at most TRAINLAB_MAX_EVENT_STREAMS streams
    at once: one more is 429."""
    cursor = _cursor(last_event_id, since_step)
    first = await run_in_threadpool(_poll, engine, experiment_id, cursor)
    if first is None:
        raise ExperimentNotFound(experiment_id)
    stream = _stream(request, engine, experiment_id, cursor, first, settings.max_stream_s)
    return event_stream(request, principal, request.app.state.stream_slots, stream)


def event_stream(
    request: Request, principal: Principal, slots: StreamSlots, stream: AsyncIterator[str]
) -> StreamingResponse:
    """`stream` as text/event-stream, holding one of the caller's `slots` while it lasts (429
    when it holds them all). Callers are keys, or addresses other than loopback."""
    caller = principal.key_id or client_address(request.scope)
    counted = principal.key_id is not None or not is_loopback(caller)
    if counted and not slots.acquire(caller):
        raise HTTPException(
            429,
            f"this caller already holds {slots.per_caller} event streams of this kind "
            "(TRAINLAB_MAX_EVENT_STREAMS); close one first",
            headers={"Retry-After": "5"},
        )
    return StreamingResponse(
        released(stream, slots, caller) if counted else stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
