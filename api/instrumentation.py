"""HTTP request latency for /metrics, as a plain ASGI middleware (no BaseHTTPMiddleware, so
streaming answers pass through untouched).

Requests are labelled by route template (`/experiments/{experiment_id}/loss`), read from the
route the router matched (`scope["route"]`, set by Starlette and FastAPI on the scope this
middleware passed down), never by the raw path: one label value per endpoint, however many
experiments there are. A path no route matches is `<unmatched>`, and a method outside the
standard ones is `OTHER`: no label takes a value the caller chooses, so the number of series
(and the size of a scrape) is bounded by the routes, the methods and the statuses the app
answers with, however a caller fuzzes it.
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
OTHER_METHOD = "OTHER"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestLatency:
    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # What the client gets when the app raises before answering: the error handler's 500.
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "GET")
            method = method if method in _METHODS else OTHER_METHOD
            labels = (method, route_template(scope), str(status))
            self.histogram.labels(*labels).observe(elapsed)
