"""Request rates per API key and per client address, and a cap on live event streams.

Rates are counted with the `limits` library (moving window, in this process's memory: one API
process serves a deployment; behind a proxy, run uvicorn with --proxy-headers so the client
address is the real one). A request over either limit gets 429 with Retry-After and a body
naming the limit, before any route or database work. The per-key count uses the key's public
prefix, so it needs no lookup; the per-address count bounds anyone who invents keys. Loopback
addresses are this machine (the operator, its tools, `make run`'s single user) and are not
counted per address; their keys still are.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from core.keys import split_token
from core.settings import is_loopback

# Probes and the dashboard's own files are never limited: a monitor must not lock itself out.
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")
_EXEMPT_PREFIXES = ("/static/",)


class RateLimit:
    """Pure ASGI middleware."""

    def __init__(self, app: ASGIApp, *, per_key: str, per_address: str) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_key: RateLimitItem = parse(per_key)
        self.per_address: RateLimitItem = parse(per_address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        checks = [] if is_loopback(address) else [("address", self.per_address, address)]
        prefix = _key_prefix(scope)
        if prefix is not None:
            checks.append(("key", self.per_key, prefix))
        for what, item, identity in checks:
            if not self.limiter.hit(item, what, identity):
                await _too_many(send, what, item, self._retry_after(item, what, identity))
                return
        await self.app(scope, receive, send)

    def _retry_after(self, item: RateLimitItem, *identity: str) -> int:
        reset = self.limiter.get_window_stats(item, *identity).reset_time
        return max(1, math.ceil(reset - time.time()))


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path == "/" or path.startswith(_EXEMPT_PREFIXES)


def _key_prefix(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            parts = split_token(token.strip()) if scheme.lower() == "bearer" else None
            return parts[0] if parts else None
    return None


async def _too_many(send: Send, what: str, item: RateLimitItem, retry_after: int) -> None:
    limit = f"{item.amount} per {item.multiples} {item.GRANULARITY.name}"
    body = json.dumps(
        {
            "detail": f"too many requests from this {what}: the limit is {limit}; "
            f"retry in {retry_after} s",
            "limit": limit,
            "scope": what,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class StreamSlots:
    """How many event streams each caller (a key, or an address other than loopback) holds."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> bool:
        with self._lock:
            if self._held[caller] >= self.per_caller:
                return False
            self._held[caller] += 1
            return True

    def release(self, caller: str) -> None:
        with self._lock:
            self._held[caller] -= 1
            if self._held[caller] <= 0:
                del self._held[caller]

    def held(self, caller: str) -> int:
        with self._lock:
            return self._held[caller]
