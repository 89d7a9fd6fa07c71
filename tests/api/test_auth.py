"""Accounts end to end through the app, on SQLite and Postgres: who may read and change what
when the server requires API keys, what an open server does, and the OpenAPI description."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from core.keys import Role
from core.store import keys
from core.store.session import session_scope
from tests.api.app_client import AppClient

SMALL = {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 500, "test_limit": 100}}


@dataclass(frozen=True)
class Keys:
    admin: str
    alice: str
    bob: str
    viewer: str

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def issued(engine: Engine) -> Keys:
    with session_scope(engine) as session:
        made = {
            name: keys.create_key(session, name, role)[1]
            for name, role in [
                ("root", Role.admin),
                ("alice", Role.member),
                ("bob", Role.member),
                ("carol", Role.viewer),
            ]
        }
    return Keys(made["root"], made["alice"], made["bob"], made["carol"])


def test_without_a_valid_key_only_probes_page_and_docs_answer(
    guarded: AppClient, issued: Keys, engine: Engine
) -> None:
    for path in ("/experiments", "/ablations", "/presets", "/metrics", "/keys"):
        refused = guarded.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in refused.json()["detail"]
    for token in ("tlk_nonsense", issued.alice[:-2] + "xx", "Basic " + issued.alice):
        assert (
            guarded.get("/experiments", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )
    for path in ("/healthz", "/readyz", "/", "/docs", "/openapi.json"):
        assert guarded.get(path).status_code == 200, path
    assert guarded.get("/readyz").json()["auth"] == "required"
    # A revoked key is refused from the next request on.
    with session_scope(engine) as session:
        (carol,) = [k for k in keys.list_keys(session) if k.name == "carol"]
        keys.revoke_key(session, carol.prefix)
    assert guarded.get("/experiments", headers=Keys.header(issued.viewer)).status_code == 401


def test_viewers_read_members_change_their_own_admins_everything(
    guarded: AppClient, issued: Keys
) -> None:
    h = Keys.header
    assert guarded.get("/experiments", headers=h(issued.viewer)).status_code == 200
    refused = guarded.post("/experiments", json=SMALL, headers=h(issued.viewer))
    assert refused.status_code == 403 and "member role" in refused.json()["detail"]

    alices = guarded.post("/experiments", json=SMALL, headers=h(issued.alice)).json()
    assert alices["owner"] == "alice"
    bobs = guarded.post("/experiments", json=SMALL, headers=h(issued.bob)).json()
    cancel = f"/experiments/{alices['id']}/cancel"
    taken = guarded.post(cancel, json={}, headers=h(issued.bob))
    assert taken.status_code == 403 and "belongs to alice" in taken.json()["detail"]
    assert (
        guarded.delete(
            f"/experiments/{alices['id']}?cancel=true", headers=h(issued.bob)
        ).status_code
        == 403
    )
    assert guarded.post(cancel, json={}, headers=h(issued.alice)).status_code == 200
    assert (
        guarded.post(
            f"/experiments/{bobs['id']}/cancel", json={}, headers=h(issued.admin)
        ).status_code
        == 200
    )
    assert (
        guarded.delete(f"/experiments/{alices['id']}", headers=h(issued.alice)).status_code == 200
    )

    ablation = guarded.post(
        "/ablations",
        json={"preset": "seed-adam", "overrides": SMALL["overrides"], "seeds": 2},
        headers=h(issued.alice),
    ).json()
    assert ablation["owner"] == "alice"
    path = f"/ablations/{ablation['id']}/cancel"
    assert guarded.post(path, json={}, headers=h(issued.bob)).status_code == 403
    assert guarded.post(path, json={}, headers=h(issued.alice)).status_code == 200


def test_admins_manage_keys_over_http(guarded: AppClient, issued: Keys) -> None:
    h = Keys.header
    assert guarded.get("/keys", headers=h(issued.alice)).status_code == 403
    made = guarded.post("/keys", json={"name": "dave", "role": "viewer"}, headers=h(issued.admin))
    assert made.status_code == 201
    dave = made.json()
    assert dave["key"].startswith("tlk_") and dave["role"] == "viewer"
    listed = guarded.get("/keys", headers=h(issued.admin)).json()
    assert {k["name"] for k in listed} == {"root", "alice", "bob", "carol", "dave"}
    assert all("key" not in k for k in listed)
    assert guarded.get("/experiments", headers=h(dave["key"])).status_code == 200
    assert guarded.delete(f"/keys/{dave['prefix']}", headers=h(issued.admin)).status_code == 200
    assert guarded.get("/experiments", headers=h(dave["key"])).status_code == 401
    assert guarded.delete("/keys/nosuchkey", headers=h(issued.admin)).status_code == 404
    bad = guarded.post("/keys", json={"name": "has space"}, headers=h(issued.admin))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "name"


def test_an_open_server_lets_everyone_act_and_records_a_key_sent_anyway(
    client: AppClient, issued: Keys
) -> None:
    anonymous = client.post("/experiments", json=SMALL).json()
    assert anonymous["owner"] is None
    assert client.post(f"/experiments/{anonymous['id']}/cancel", json={}).status_code == 200
    owned = client.post("/experiments", json=SMALL, headers=Keys.header(issued.bob)).json()
    assert owned["owner"] == "bob"
    bad = client.get("/experiments", headers={"Authorization": "Bearer tlk_wrong"})
    assert bad.status_code == 401  # a key that is sent is checked, open or not


def test_openapi_describes_the_scheme_and_the_refusals(
    client: AppClient, guarded: AppClient
) -> None:
    doc = guarded.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["APIKey"]["type"] == "http" and schemes["APIKey"]["scheme"] == "bearer"
    submit = doc["paths"]["/experiments"]["post"]
    assert {"401", "403", "429"} <= set(submit["responses"])
    assert submit["security"] == [{"APIKey": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    # An open server documents the key as optional: a request may carry one, or none.
    open_doc = client.get("/openapi.json").json()
    assert open_doc["paths"]["/experiments"]["post"]["security"] == [{"APIKey": []}, {}]


def test_an_ablation_reuses_only_its_owners_runs(guarded: AppClient, issued: Keys) -> None:
    """Bob's ablation that asks for Alice's run (same spec and seed) runs it again as his,
    so Alice can still delete hers; her own ablation reuses it."""
    h = Keys.header
    ask = {"preset": "seed-adam", "overrides": SMALL["overrides"], "seeds": [0]}
    alices = guarded.post("/experiments", json=SMALL, headers=h(issued.alice)).json()
    bobs = guarded.post("/ablations", json=ask, headers=h(issued.bob)).json()
    assert (bobs["created_experiments"], bobs["reused_experiments"]) == (1, 0)
    (member,) = bobs["members"]
    assert member["experiment_id"] != alices["id"]
    assert guarded.get(f"/experiments/{member['experiment_id']}").status_code == 401
    assert (
        guarded.get(f"/experiments/{member['experiment_id']}", headers=h(issued.bob)).json()[
            "owner"
        ]
        == "bob"
    )
    deleted = guarded.delete(f"/experiments/{alices['id']}?cancel=true", headers=h(issued.alice))
    assert deleted.status_code == 200, deleted.text
    # Bob's ablation is whole: its run is his own, still queued.
    after = guarded.get(f"/ablations/{bobs['id']}", headers=h(issued.bob)).json()
    assert [m["experiment_id"] for m in after["members"]] == [member["experiment_id"]]
    assert after["status_counts"]["queued"] == 1

    again = guarded.post("/experiments", json=SMALL, headers=h(issued.alice)).json()
    hers = guarded.post("/ablations", json=ask, headers=h(issued.alice)).json()
    assert (hers["created_experiments"], hers["reused_experiments"]) == (0, 1)
    assert hers["members"][0]["experiment_id"] == again["id"]
