"""API keys over HTTP, for admins: issue (the key is in this answer only), list, revoke.
`trainlab keys` does the same on the server's host, and is how the first admin key is made."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.auth import Admin, KeyCache, Viewer
from api.deps import SessionDep
from api.schemas import DATABASE_DOWN, ERROR_RESPONSES, INVALID
from core.keys import Role
from core.store import keys
from core.store.clock import as_utc
from core.store.models import ApiKey

router = APIRouter(tags=["keys"])

ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class KeyCreate(BaseModel):
    name: str = Field(pattern=ACCOUNT_PATTERN, description="Account name, e.g. alice.")
    role: Role = Role.member


class KeyPublic(BaseModel):
    id: str
    prefix: str = Field(description="Shown in listings to tell keys apart; not a secret.")
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyPublic:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            role=Role(key.role),
            created_at=as_utc(key.created_at) or key.created_at,
            last_used_at=as_utc(key.last_used_at),
            revoked_at=as_utc(key.revoked_at),
        )


class KeyIssued(KeyPublic):
    key: str = Field(description="The key itself: shown here once, never again.")


class Caller(BaseModel):
    name: str | None = Field(description="The key's account; null on an open server without one.")
    role: Role
    key_id: str | None


@router.get("/me", response_model=Caller)
def who_am_i(principal: Viewer) -> Caller:
    """Whose key this request carries (the dashboard shows it), or null on an open server."""
    return Caller(name=principal.name, role=principal.role, key_id=principal.key_id)


@router.get("/keys", response_model=list[KeyPublic], responses=DATABASE_DOWN)
def list_keys(_: Admin, session: SessionDep, include_revoked: bool = False) -> list[KeyPublic]:
    return [KeyPublic.of(k) for k in keys.list_keys(session, include_revoked=include_revoked)]


@router.post(
    "/keys", status_code=201, response_model=KeyIssued, responses={**INVALID, **DATABASE_DOWN}
)
def create_key(body: KeyCreate, _: Admin, session: SessionDep) -> KeyIssued:
    """Issue a key for the account `name` (a new account, or another key for one: rotate by
    issuing a new key, then revoking the old one)."""
    key, token = keys.create_key(session, body.name, body.role)
    session.commit()
    return KeyIssued(**KeyPublic.of(key).model_dump(), key=token)


@router.delete("/keys/{prefix}", response_model=KeyPublic, responses=ERROR_RESPONSES)
def revoke_key(
    prefix: Annotated[
        str, Path(pattern=r"^[a-z0-9]{1,32}$", description="The key's prefix (or its id).")
    ],
    _: Admin,
    session: SessionDep,
    request: Request,
) -> KeyPublic:
    """Revoke a key: it is refused from the next request on (by this API process; by others
    within KEY_CACHE_S, 5 s, the time they remember a valid key)."""
    revoked = keys.revoke_key(session, prefix)
    session.commit()
    key_cache: KeyCache = request.app.state.key_cache
    key_cache.forget(revoked.id)
    return KeyPublic.of(revoked)
