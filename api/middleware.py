"""ASGI middlewares that guard every request, written as plain ASGI (no BaseHTTPMiddleware)
so streaming responses pass through untouched.

- SecurityHeaders: every answer carries a Content-Security-Policy, X-Content-Type-Options,
  X-Frame-Options, Referrer-Policy and the cross-origin isolation headers.
- RequestGuard: a Host this server is not known by gets 400 (DNS rebinding: a page whose name
  was re-pointed at 127.0.0.1 would otherwise talk to the API as if it were the dashboard), and
  so does a request with more than one Host (the check and the URLs the app builds, such as a
  redirect's, would read different ones); more than `max_headers` headers get 431; a path with
  control characters gets 400 before any route or file lookup sees it.
- HeadAsGet: HEAD is answered wherever GET is, with GET's status and headers and no body.
- JsonPostsOnly: a POST to an endpoint must say `Content-Type: application/json`, body or not
  (415 otherwise). Browsers send a cross-site form or `text/plain` request without asking, but
  ask the server first (CORS preflight, which this API never grants) before a cross-site
  request with a JSON content type: so no other site can make a browser submit or cancel.
- WritesSeen: a request that may change the store (any method but GET, HEAD, OPTIONS) ends
  the window in which polled answers are given again unread (api/http/freshness.py).
- BodySizeLimit: a body over `max_bytes` gets 413, whether it declares its length or arrives
  chunked (then it is counted as it streams in, and refused as soon as it passes the limit).
An exception no handler knew about is answered by Starlette's own ServerErrorMiddleware with
a plain JSON 500 (api/errors.py); nothing of it reaches the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import freshness
from api.http.headers import REDOC_CSP, SECURITY_HEADERS


class BodyTooLarge(HTTPException):
    """Raised from inside receive(): FastAPI re-raises HTTPExceptions met while reading the
    body, so the app's own handler turns it into the 413 answer."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body too large: the limit is {max_bytes:,} bytes")


REDOC_PATH = "/redoc"
_ENCODED_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS]


async def send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_ENCODED_HEADERS)
        if scope["path"] == REDOC_PATH:
            extra[0] = (b"content-security-policy", REDOC_CSP.encode())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(name: str, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _has_control_characters(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


class RequestGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], max_headers: int = 100) -> None:
        self.app = app
        self.allowed_hosts = list(allowed_hosts)
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if len(scope["headers"]) > self.max_headers:
            detail = f"too many request headers: the limit is {self.max_headers}"
            await send_json(send, 431, {"detail": detail})
            return
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1:
            await send_json(send, 400, {"detail": "the request has more than one Host header"})
            return
        name = host_name(hosts[0].decode("latin-1") if hosts else "")
        if not host_allowed(name, self.allowed_hosts):
            # Not the name given back: a Host header is the client's text, not ours to echo.
            detail = "this server does not answer to that host name (see TRAINLAB_TRUSTED_HOSTS)"
            await send_json(send, 400, {"detail": detail})
            return
        if _has_control_characters(scope["path"]):
            await send_json(send, 400, {"detail": "the URL path contains control characters"})
            return
        await self.app(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    media = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    return media == "application/json"


class JsonPostsOnly:
    """415 for a POST without a JSON content type to any POST endpoint, except the paths in
    `uploads`: endpoints that change no state (predict), which also take images. A cross-site
    form can only make those compute, and can't read the answer. Only requests that reach a
    POST endpoint are checked, so a POST to a path without one still gets 405."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Callable[[], Sequence[BaseRoute]],
        uploads: Sequence[re.Pattern[str]] = (),
    ) -> None:
        self.app = app
        self.routes = routes
        self.uploads = tuple(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not _is_json(dict(scope["headers"]).get(b"content-type", b""))
            and not any(pattern.match(scope["path"]) for pattern in self.uploads)
            and any(route.matches(scope)[0] == Match.FULL for route in self.routes())
        ):
            detail = (
                "a POST here takes Content-Type: application/json (also when it has no body), "
                "so that no other web site can send it from a browser"
            )
            await send_json(send, 415, {"detail": detail})
            return
        await self.app(scope, receive, send)


class _TrackedSend:
    """Wraps send() to remember whether the response has started: past that point an error
    can no longer be answered with a response of its own."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, {"detail": BodyTooLarge(self.max_bytes).detail})
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        tracked = _TrackedSend(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge as exc:
            # Read outside FastAPI's body parsing (a raw stream): answer here instead.
            if tracked.started:
                raise
            await send_json(send, 413, {"detail": exc.detail})


class WritesSeen:
    """Marks every request that may write, before it runs (see api/http/freshness.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in freshness.SAFE_METHODS:
            freshness.note_write()
        await self.app(scope, receive, send)


class HeadAsGet:
    """HEAD where a GET route answers (FastAPI's routes take only the methods they name):
    the request runs as GET, the status and headers go out, the body does not. Once the
    answer has started, receive() says the client left, so an event stream stops at once."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not self._get_answers(scope):
            await self.app(scope, receive, send)
            return
        done = False

        async def headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.start":
                await send(message)
                return
            if message["type"] == "http.response.body":
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def until_answered() -> Message:
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, until_answered, headers_only)

    def _get_answers(self, scope: Scope) -> bool:
        as_get = {**scope, "method": "GET"}
        for route in self.routes():
            if route.matches(scope)[0] == Match.FULL:
                return False  # the route takes HEAD itself (static files)
            if route.matches(as_get)[0] == Match.FULL:
                return True
        return False
