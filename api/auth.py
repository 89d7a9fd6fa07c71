"""Who is asking: API keys (`Authorization: Bearer tlk_...`), roles and ownership.

When the settings require keys (any non-loopback bind, or TRAINLAB_AUTH=required), every
route but the health checks, the dashboard's files and the API docs needs a valid key:
401 without one, 403 when its role is too low or the resource is another account's. On an
open server (the embedded default on 127.0.0.1) everyone acts as an admin, and a key that is
sent anyway is still checked and recorded as the owner of what it submits.

Keys are looked up in a short session of their own, never in the request's: the submit
routes' first statement must be the quota lock (core/store/quotas.py), and on SQLite a read
earlier in the same transaction would stop it from taking the write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from core.keys import Role
from core.store import keys, session_scope
from core.store.quotas import Quotas

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An API key from `trainlab keys create`, sent as `Authorization: Bearer <key>`.",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="trainlab"'}


@dataclass(frozen=True)
class Principal:
    """The caller: an account with a role, or anyone on an open server."""

    name: str | None
    role: Role
    key_id: str | None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def can_change(self, owner: str | None) -> bool:
        """Members change their own things; admins, and anyone on an open server, all."""
        if self.role is Role.admin:
            return True
        return self.role is Role.member and owner is not None and owner == self.name


ANYONE = Principal(name=None, role=Role.admin, key_id=None)


class NotAuthenticated(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers=_CHALLENGE)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> Principal:
    settings = request.app.state.settings
    if credentials is None:
        if settings.auth_required:
            raise NotAuthenticated(
                "this server needs an API key: send `Authorization: Bearer <key>` "
                "(an operator issues one with `trainlab keys create`)"
            )
        return ANYONE
    with session_scope(request.app.state.engine) as session:
        key = keys.authenticate(session, credentials.credentials)
        found = None if key is None else Principal(key.name, Role(key.role), key.id)
    if found is None:
        raise NotAuthenticated("the API key is not valid (mistyped, or revoked)")
    request.state.principal = found
    return found


def _at_least(role: Role) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
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


def quotas_for(request: Request) -> Quotas:
    settings = request.app.state.settings
    return Quotas(
        active_experiments=settings.quota_active_experiments,
        daily_cpu_hours=settings.quota_daily_cpu_hours,
        ablation_cells=settings.quota_ablation_cells,
    )


QuotasDep = Annotated[Quotas, Depends(quotas_for)]


AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "No API key, or one that is not valid (revoked, mistyped)."},
    403: {"description": "The key's role is too low, or the resource is another account's."},
}
