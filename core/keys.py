"""API keys as tokens: how they are made, shown and checked. No storage here (core/store/keys.py).

A key reads `tlk_<prefix>_<secret>`: the prefix (8 lowercase base32 characters) is stored in
the clear and shown in listings so people can tell their keys apart; the secret (32 random
bytes, 256 bits) is stored only as its SHA-256. A slow password hash would add nothing: the
secret is random, not chosen by a person, so it cannot be guessed from a dictionary. Checks
compare digests in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "tlk_"
_TOKEN = re.compile(r"^tlk_([a-z2-7]{8})_([A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    """What a key may do. Each role includes the ones before it."""

    viewer = "viewer"  # read everything
    member = "member"  # and submit, cancel and delete its own experiments and ablations
    admin = "admin"  # and everything, keys included

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class NewKey:
    token: str  # shown once, never stored
    prefix: str
    secret_hash: str


def new_key() -> NewKey:
    prefix = base64.b32encode(secrets.token_bytes(5)).decode().lower()  # 8 characters
    secret = secrets.token_urlsafe(32)  # 43 characters
    return NewKey(f"{TOKEN_PREFIX}{prefix}_{secret}", prefix, hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, else None (nothing to look up)."""
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
