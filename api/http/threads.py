"""Blocking work (store reads, inference, metrics) run off the event loop, in the thread pool
of the server's async runtime, so one slow read never stalls the other requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool as _run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)` in a worker thread; the request awaits it."""
    return await _run_in_threadpool(func, *args, **kwargs)
