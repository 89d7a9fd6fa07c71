"""What a request sends, checked by its size and structure before any route parses it.

- A JSON body (POST, PUT, PATCH with `Content-Type: application/json`) with more than
  `max_items` items gets 413. Items are counted as commas and opening brackets with
  bytes.count (C speed, about a millisecond a megabyte), before any parser runs: parsing and
  validating JSON happens on the event loop, and a body of 90,000 keys held it for over half a
  second, stalling every other request. The count is an upper bound (a comma inside a string
  counts too), so no body within the bound is refused for it, and the bound is far above the
  largest body the API takes (a predict's 784 pixels).
- A NUL character (U+0000) in a query parameter, or in any string of a JSON body (key or
  value), gets 422 naming the field. PostgreSQL cannot store NUL in text (a 500 there) while
  SQLite can: one refusal here makes both stores answer the same.

The body is read whole (BodySizeLimit, outside this one, bounds it) and handed on unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import send_json

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NUL_ESCAPE = b"\\u0000"


class InputGuard:
    def __init__(self, app: ASGIApp, max_items: int) -> None:
        self.app = app
        self.max_items = max_items

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = _nul_in_query(scope.get("query_string", b""))
        if field is not None:
            await _refuse_nul(send, field, "query")
            return
        if scope["method"] not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, rest = await _read_body(receive)
        items = body.count(b",") + body.count(b"[") + body.count(b"{")
        if items > self.max_items:
            detail = (
                f"the JSON body has about {items:,} items; the limit is {self.max_items:,} "
                "(TRAINLAB_MAX_JSON_ITEMS)"
            )
            await send_json(send, 413, {"detail": detail})
            return
        if _NUL_ESCAPE in body:
            field = _nul_in_json(body)
            if field is not None:
                await _refuse_nul(send, field, "body")
                return
        await self.app(scope, _replay(body, rest, receive), send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return bool(media == "application/json")
    return False


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body, and the message that ended the reading when it was not the body's
    last part (a disconnect), to be handed on after it."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), message
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), None


def _replay(body: bytes, rest: Message | None, receive: Receive) -> Receive:
    given = False

    async def replayed() -> Message:
        nonlocal given, rest
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        if rest is not None:
            message, rest = rest, None
            return message
        return await receive()

    return replayed


def _nul_in_query(query_string: bytes) -> str | None:
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "\\0")
    return None


def _nul_in_json(body: bytes) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the route says what is wrong with it
    return _find_nul(document, "")


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return where.replace("\x00", "\\0")
            found = _find_nul(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


async def _refuse_nul(send: Send, field: str, source: str) -> None:
    reason = "must not contain the NUL character (U+0000)"
    field = field if len(field) <= 120 else f"{field[:80]}..."
    await send_json(
        send,
        422,
        {
            "detail": f"invalid request: {field}: {reason}",
            "errors": [{"field": field, "in": source, "reason": reason}],
        },
    )
