"""Two ASGI middlewares that guard every request, written as plain ASGI (no
BaseHTTPMiddleware) so streaming responses pass through untouched.

- BodySizeLimit: a body over `max_bytes` gets 413, whether it declares its length or arrives
  chunked (then it is counted as it streams in, and refused as soon as it passes the limit).
- CatchAll: an exception no handler knew about is logged with its traceback and answered with
  a plain JSON 500; nothing of it reaches the client.
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from inside receive(): FastAPI re-raises HTTPExceptions met while reading the
    body, so the app's own handler turns it into the 413 answer."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body too large: the limit is {max_bytes:,} bytes")


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


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if tracked.started:
                # Half a response is out; all that is left is to drop the connection.
                raise
            await send_json(
                send, 500, {"detail": "internal server error; it has been logged on the server"}
            )
