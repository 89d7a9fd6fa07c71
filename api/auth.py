"""Who is asking: API keys (`Authorization: Bearer tlk_...`), roles and ownership.

When the settings require keys (any non-loopback bind, or TRAINLAB_AUTH=required), every
route but the health checks, the dashboard's files and the API docs needs a valid key:
401 without one, 403 when its role is too low or the resource is another account's. On an
open server (the embedded default on 127.0.0.1) everyone acts as an admin, and a key that is
sent anyway is still checked and recorded as the owner of what it submits.

Keys are looked up in a short session of their own, never in the request's: the submit
routes' first statement must be the quota lock (core/store/quotas.py), and on SQLite a read
earlier in the same transaction would stop it from taking the write lock.

A key found valid is remembered for KEY_CACHE_S (5 s) in this process (`KeyCache`, keyed by a
digest of the token, never the token itself), so a poller's requests skip the lookup, the
digest comparison and the thread-pool trip. Revoking a key over HTTP (DELETE /keys/{prefix})
forgets it at once in this process; a key revoked elsewhere (`trainlab keys revoke`, another
API process) is refused at most KEY_CACHE_S later. Invalid tokens are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from api.http.threads import run_in_threadpool
from core.identity import ANYONE, Principal
from core.keys import Role
from core.store import keys
from core.store.quotas import Quotas
from core.store.session import session_scope

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An API key from `trainlab keys create`, sent as `Authorization: Bearer <key>`.",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="trainlab"'}


class NotAuthenticated(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers=_CHALLENGE)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


KEY_CACHE_S = 5.0
KEY_CACHE_SIZE = 1024


class KeyCache:
    """Valid keys seen lately: token digest -> principal. Bounded in size (the least recently
    used goes) and in age (KEY_CACHE_S): a cachetools TTLCache on the given clock, whose
    reads reorder it, so every access holds the lock."""

    def __init__(
        self,
        ttl_s: float = KEY_CACHE_S,
        size: int = KEY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: TTLCache[bytes, Principal] = TTLCache(maxsize=size, ttl=ttl_s, timer=clock)
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.blake2b(token.encode("utf-8", "surrogateescape"), digest_size=32).digest()

    def get(self, token: str) -> Principal | None:
        digest = self._digest(token)
        with self._lock:
            return self._items.get(digest)  # none once its time is up; a hit is refreshed in order

    def put(self, token: str, principal: Principal) -> None:
        digest = self._digest(token)
        with self._lock:
            self._items[digest] = principal

    def clear(self) -> None:
        """Forget every entry: each key is looked up in the store again on its next use."""
        with self._lock:
            self._items.clear()

    def forget(self, key_id: str) -> None:
        """Drop every entry of the key `key_id` (it was just revoked)."""
        # Time stands still inside (the cache's own timer context): an entry listed as live
        # cannot expire before it is deleted, which would make the deletion raise KeyError.
        with self._lock, self._items.timer:
            for digest in [d for d, p in list(self._items.items()) if p.key_id == key_id]:
                del self._items[digest]


def _look_up(engine: Engine, token: str) -> Principal | None:
    with session_scope(engine) as session:
        key = keys.authenticate(session, token)
        return None if key is None else Principal(key.name, Role(key.role), key.id)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> Principal:
    state = request.app.state
    if credentials is None:
        if state.settings.auth_required:
            raise NotAuthenticated(
                "this server needs an API key: send `Authorization: Bearer <key>` "
                "(an operator issues one with `trainlab keys create`)"
            )
        return ANYONE
    token = credentials.credentials
    cache: KeyCache = state.key_cache
    found = cache.get(token)
    if found is None:
        found = await run_in_threadpool(_look_up, state.engine, token)
        if found is None:
            raise NotAuthenticated("the API key is not valid (mistyped, or revoked)")
        cache.put(token, found)
    request.state.principal = found
    return found


def _at_least(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role; the key of {principal.name} is a "
                f"{principal.role.value} key"
            )
        return principal

    return check


VIEWER = Depends(_at_least(Role.viewer))
Viewer = Annotated[Principal, VIEWER]
Member = Annotated[Principal, Depends(_at_least(Role.member))]
Admin = Annotated[Principal, Depends(_at_least(Role.admin))]


def ensure_can_change(principal: Principal, owner: str | None, what: str) -> None:
    """403 unless the caller may change `what`, which belongs to `owner`."""
    if not principal.can_change(owner):
        whose = f"belongs to {owner}" if owner else "was made before accounts existed"
        raise Forbidden(f"{what} {whose}; only its owner or an admin may change it")


async def quotas_for(request: Request) -> Quotas:
    return Quotas.of(request.app.state.settings)


QuotasDep = Annotated[Quotas, Depends(quotas_for)]


AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "No API key, or one that is not valid (revoked, mistyped)."},
    403: {"description": "The key's role is too low, or the resource is another account's."},
}
