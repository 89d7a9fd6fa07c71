"""A synchronous httpx client for the ASGI app, for plain (non-async) tests.

httpx.AsyncClient over httpx.ASGITransport runs on an event loop in a helper thread (an anyio
blocking portal), and the app's lifespan is entered and left around the client's use, as a
server would. Requests go through the real app: routing, middleware, handlers, the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI


class AppClient:
    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            lambda: self._client.request(method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@contextmanager
def app_client(
    app: FastAPI, client_address: tuple[str, int] = ("127.0.0.1", 123)
) -> Iterator[AppClient]:
    """`client_address` is where the requests seem to come from (loopback by default)."""
    # As a server does: an unhandled exception reaches the client as the app's 500 answer
    # (the server, not the client, is where its traceback goes).
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client_address)
    with start_blocking_portal() as portal:
        lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        with portal.wrap_async_context_manager(lifespan):
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            try:
                yield AppClient(portal, client)
            finally:
                portal.call(client.aclose)
