"""Work the API process repeats in the background (the reaper, the retention pass).

Each pass runs in a worker thread. Leaving the context stops the loop between passes and
waits for a pass under way to end (it holds a database connection; the app disposes of its
engine right after), within `FINISH_PASS_S`, after which the loop is cancelled anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")

FINISH_PASS_S = 30.0


@contextlib.asynccontextmanager
async def running_every(
    name: str,
    interval_s: float,
    one_pass: Callable[[], T],
    after: Callable[[T], None] = lambda _: None,
    failed: Callable[[Exception], None] = lambda _: None,
) -> AsyncIterator[None]:
    """Call `one_pass` in a thread every `interval_s` while the context is open; `after` sees
    each result, `failed` each exception (the loop goes on)."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                after(await asyncio.to_thread(one_pass))
            except Exception as exc:  # the store may be briefly unreachable; try again
                failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=FINISH_PASS_S)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
