"""Request rates per API key and per client address, and a cap on live event streams.

Rates are written as the `limits` library parses them ("600/minute") and counted in a moving
window in this process's memory (`MovingWindow`: one API process serves a deployment; behind a
proxy, list it in TRAINLAB_TRUSTED_PROXIES so the client address is the real one). The
library's own in-memory storage starts a timer thread to expire entries after every hit, which
cost about 0.4 ms of CPU per request at a hundred requests a second: more than a cached poll.

A request over a limit gets 429 with Retry-After and a body naming the limit, before any route
or database work. A key is counted against its own limit only once it is known to be valid
(found in the key cache, api/auth.KeyCache, which holds only keys that passed the lookup):
a key's prefix is not secret, so counting by prefix let anyone who saw one lock its owner out
with bad requests. A token not known valid yet is counted against the address it came from,
at the per-key rate, loopback included (each one may cost a lookup). The per-address count
bounds everyone behind an address, keys or not; loopback addresses are this machine (the
operator, its tools, `make run`'s single user) and are not counted there. /metrics is limited
like any read: a scrape reads the store.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import KeyCache
from core.settings import is_loopback

# Probes and the dashboard's own files are never limited: a monitor must not lock itself out.
# (They read no store and cost microseconds; /metrics reads the store, so it is counted.)
EXEMPT_PATHS = ("/healthz", "/readyz")
_EXEMPT_PREFIXES = ("/static/",)


class MovingWindow:
    """Hits per identity in the last period, as a deque of their times: a hit is admitted
    while fewer than the limit's amount fall within the period, and a refused hit is not
    counted. Identities whose hits have all aged out are dropped now and then, so memory
    stays bounded by the hits of one period."""

    SWEEP_EVERY = 1000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0
        self._longest = 0.0

    def hit(self, item: RateLimitItem, *identity: str) -> float:
        """0.0 when the hit is admitted (and counted), else the seconds until one would be."""
        period = float(item.get_expiry())
        key = (item.key_for(), *identity)
        now = self._clock()
        with self._lock:
            self._longest = max(self._longest, period)
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - period:
                hits.popleft()
            if len(hits) >= item.amount:
                return max(hits[0] + period - now, 0.001)
            hits.append(now)
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        stale = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self._longest]
        for k in stale:
            del self._hits[k]

    def __len__(self) -> int:
        with self._lock:
            return len(self._hits)


class RateLimit:
    """Pure ASGI middleware."""

    def __init__(
        self, app: ASGIApp, *, per_key: str, per_address: str, key_cache: KeyCache
    ) -> None:
        self.app = app
        self.key_cache = key_cache
        self.window = MovingWindow()
        self.per_key: RateLimitItem = parse(per_key)
        self.per_address: RateLimitItem = parse(per_address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        checks = [] if is_loopback(address) else [("address", self.per_address, address)]
        token = _bearer_token(scope)
        if token is not None:
            known = self.key_cache.get(token)
            if known is not None and known.key_id is not None:
                checks.append(("key", self.per_key, known.key_id))
            else:
                checks.append(("address", self.per_key, f"unverified {address}"))
        for what, item, identity in checks:
            wait = self.window.hit(item, what, identity)
            if wait:
                await _too_many(send, what, item, max(1, math.ceil(wait)))
                return
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path == "/" or path.startswith(_EXEMPT_PREFIXES)


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
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
