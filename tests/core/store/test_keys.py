"""API keys in the store, on SQLite and Postgres: issue, authenticate, list, revoke."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.keys import Role
from core.store import keys
from core.store.session import session_scope


def test_issue_authenticate_and_revoke(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert not keys.has_active_keys(session)
        alice, token = keys.create_key(session, "alice", Role.member)
    with session_scope(engine) as session:
        found = keys.authenticate(session, token)
        assert found is not None and (found.name, found.role) == ("alice", "member")
        assert keys.authenticate(session, token[:-1] + "x") is None
        assert keys.authenticate(session, "tlk_" + alice.prefix + "_" + "A" * 43) is None
        listed = keys.list_keys(session)
        assert [k.prefix for k in listed] == [alice.prefix]
        assert all(token not in repr(vars(k)) for k in listed)  # the secret is nowhere
    with session_scope(engine) as session:
        assert keys.list_keys(session)[0].last_used_at is not None  # recorded, coarsely
        keys.revoke_key(session, alice.prefix)
        keys.revoke_key(session, alice.id)  # twice is fine
    with session_scope(engine) as session:
        assert keys.authenticate(session, token) is None
        assert keys.list_keys(session) == []
        assert len(keys.list_keys(session, include_revoked=True)) == 1
        assert not keys.has_active_keys(session)


def test_revoking_an_unknown_key_says_so(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(keys.KeyNotFound):
        keys.revoke_key(session, "nosuchkey")
