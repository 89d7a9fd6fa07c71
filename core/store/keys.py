"""API keys in the store: issue, list, revoke, and find the key a request presents.

Only the SHA-256 of a key's secret is stored (core/keys.py). Looking a token up is one indexed
read by its prefix and one constant-time digest comparison; `last_used_at` is refreshed at most
once a minute, so authenticating a request almost never writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from core.errors import NotFound
from core.keys import Role, new_key, secret_matches, split_token
from core.store.clock import as_utc, utcnow
from core.store.errors import StoreError
from core.store.models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyNotFound(StoreError, NotFound):
    def __init__(self, ident: str) -> None:
        super().__init__(f"no API key with id or prefix {ident!r}")


def create_key(session: Session, name: str, role: Role) -> tuple[ApiKey, str]:
    """A new key for the account `name`: (the stored row, the token, to be shown once)."""
    made = new_key()
    key = ApiKey(
        name=name, role=role.value, prefix=made.prefix, secret_hash=made.secret_hash,
        created_at=utcnow(),
    )  # fmt: skip
    session.add(key)
    session.flush()
    return key, made.token


def list_keys(session: Session, *, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.name), col(ApiKey.created_at))
    if not include_revoked:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    return list(session.exec(query).all())


def revoke_key(session: Session, ident: str) -> ApiKey:
    """Revoke by id or prefix (as `trainlab keys list` shows them). Revoking twice is fine."""
    key = session.exec(
        select(ApiKey).where(or_(col(ApiKey.id) == ident, col(ApiKey.prefix) == ident))
    ).first()
    if key is None:
        raise KeyNotFound(ident)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The live key this token belongs to, or None (malformed, unknown, wrong or revoked)."""
    parts = split_token(token)
    if parts is None:
        return None
    prefix, secret = parts
    query = select(ApiKey).where(col(ApiKey.prefix) == prefix)
    key = session.exec(query).first()
    if key is None or key.revoked_at is not None or not secret_matches(secret, key.secret_hash):
        return None
    now = utcnow()
    if key.last_used_at is None or now - _aware(key) > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
    return key


def has_active_keys(session: Session) -> bool:
    found = session.exec(select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)).first()
    return found is not None


def _aware(key: ApiKey) -> datetime:
    stamp = as_utc(key.last_used_at)
    assert stamp is not None
    return stamp
