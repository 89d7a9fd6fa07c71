"""The API-key cache: a valid key is remembered for at most KEY_CACHE_S, a key revoked over
HTTP is refused at once, one revoked elsewhere once its entry is older than the bound.
Through the app, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.auth import KEY_CACHE_S, KeyCache
from core.identity import Principal
from core.keys import Role
from core.settings import Settings
from core.store import keys
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guarded(settings: Settings, clock: Clock) -> Iterator[AppClient]:
    app = create_app(settings.model_copy(update={"auth": "required"}), lifespan_hooks=[])
    app.state.key_cache = KeyCache(clock=clock)
    with app_client(app) as api:
        yield api


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_bound_is_five_seconds_and_entries_expire_and_are_bounded(clock: Clock) -> None:
    assert KEY_CACHE_S == 5.0
    cache = KeyCache(size=2, clock=clock)
    alice = Principal("alice", Role.member, "k1")
    cache.put("tlk_a_secret", alice)
    assert cache.get("tlk_a_secret") == alice and cache.get("tlk_a_other") is None
    clock.now += KEY_CACHE_S - 0.01
    assert cache.get("tlk_a_secret") == alice
    clock.now += 0.01
    assert cache.get("tlk_a_secret") is None
    for n in range(3):
        cache.put(f"tlk_{n}_s", Principal(f"p{n}", Role.viewer, f"k{n}"))
    assert cache.get("tlk_0_s") is None and cache.get("tlk_2_s") is not None
    cache.forget("k2")
    assert cache.get("tlk_2_s") is None and cache.get("tlk_1_s") is not None
    cache.clear()
    assert cache.get("tlk_1_s") is None


def test_a_key_revoked_elsewhere_is_refused_within_the_bound(
    guarded: AppClient, engine: Engine, clock: Clock
) -> None:
    with session_scope(engine) as session:
        key, token = keys.create_key(session, "carol", Role.viewer)
        prefix = key.prefix
    assert guarded.get("/me", headers=_bearer(token)).json()["name"] == "carol"
    with session_scope(engine) as session:  # as `trainlab keys revoke` does
        keys.revoke_key(session, prefix)
    clock.now += KEY_CACHE_S - 1
    assert guarded.get("/me", headers=_bearer(token)).status_code == 200  # still remembered
    clock.now += 1
    refused = guarded.get("/me", headers=_bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_key_revoked_over_http_is_refused_at_once(guarded: AppClient, engine: Engine) -> None:
    with session_scope(engine) as session:
        _, admin = keys.create_key(session, "root", Role.admin)
        dave, token = keys.create_key(session, "dave", Role.member)
        prefix = dave.prefix
    assert guarded.get("/me", headers=_bearer(token)).status_code == 200
    revoked = guarded.delete(f"/keys/{prefix}", headers=_bearer(admin))
    assert revoked.status_code == 200, revoked.text
    assert guarded.get("/me", headers=_bearer(token)).status_code == 401
