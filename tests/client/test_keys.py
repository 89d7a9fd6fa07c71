"""Keys and the caller, on a server that requires a key; 401 and 403 as typed errors."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.keys import Role
from tests.client.conftest import make_key
from trainlab import Client, Forbidden, Unauthorized


def test_keys_create_list_revoke_and_me(guarded_server: str, engine: Engine) -> None:
    admin_key = make_key(engine, "root", Role.admin)
    with Client(base_url=guarded_server, api_key=admin_key) as admin:
        assert admin.me().name == "root" and admin.me().role == "admin"
        issued = admin.keys.create("alice")
        assert issued.role == "member" and issued.key
        assert {k.name for k in admin.keys.list()} == {"root", "alice"}
        with Client(base_url=guarded_server, api_key=issued.key) as alice:
            assert alice.me().name == "alice"
            with pytest.raises(Forbidden):
                alice.keys.list()
            revoked = admin.keys.revoke(issued.prefix)
            assert revoked.revoked_at is not None
            with pytest.raises(Unauthorized):
                alice.me()
        assert [k.name for k in admin.keys.list()] == ["root"]
        assert len(admin.keys.list(include_revoked=True)) == 2


def test_the_key_comes_from_the_environment(
    guarded_server: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINLAB_URL", guarded_server + "/")
    monkeypatch.setenv("TRAINLAB_API_KEY", make_key(engine, "bob", Role.viewer))
    with Client() as client:
        assert client.base_url == guarded_server and client.me().name == "bob"
