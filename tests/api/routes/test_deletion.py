"""DELETE /experiments/{id} and DELETE /ablations/{id} over HTTP, on both backends: what is
removed, what is refused (409) and why, what waits for a run to stop (202)."""

from __future__ import annotations

from sqlalchemy import Engine

from core.store import pruning, runs
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.core.store.helpers import finish, queued, read, running
from tests.core.store.test_retention import full_run, rows_of


def delete(client: AppClient, path: str, **params: object) -> tuple[int, dict[str, object]]:
    answer = client.request("DELETE", path, params=params)
    return answer.status_code, answer.json()


def test_delete_a_finished_experiment(client: AppClient, engine: Engine) -> None:
    experiment_id = full_run(engine)
    assert client.get(f"/experiments/{experiment_id}/loss").status_code == 200  # now cached
    status, body = delete(client, f"/experiments/{experiment_id}")
    assert status == 200
    assert body == {"experiment_id": experiment_id, "deleted": True, "freed_bytes": 8000}
    assert set(rows_of(engine, experiment_id).values()) == {0}
    for path in ("", "/loss", "/predictions", "/model"):
        assert client.get(f"/experiments/{experiment_id}{path}").status_code == 404, path
    assert delete(client, f"/experiments/{experiment_id}")[0] == 404


def test_an_unfinished_experiment_needs_cancel(client: AppClient, engine: Engine) -> None:
    busy, attempt = running(engine)
    status, body = delete(client, f"/experiments/{busy}")
    assert status == 409 and "cancel=true" in str(body["detail"])
    assert read(engine, busy).status == "running"  # untouched

    status, body = delete(client, f"/experiments/{busy}", cancel="true")
    assert status == 202 and body["deleted"] is False
    assert read(engine, busy).cancel_requested
    assert finish(engine, busy, attempt, status=Status.cancelled)
    assert pruning.sweep_until_done(engine, keep_checkpoints=False).deleted == [busy]
    assert client.get(f"/experiments/{busy}").status_code == 404

    waiting = queued(engine)
    status, body = delete(client, f"/experiments/{waiting}", cancel="true")
    assert status == 200 and body["deleted"] is True


def test_a_member_of_an_ablation_is_refused_naming_it(client: AppClient, engine: Engine) -> None:
    created = client.post(
        "/ablations",
        json={
            "preset": "seed-baseline",
            "seeds": 1,
            "factors": {"loss": ["mse", "bce"]},
            "overrides": {"epochs": 1, "train_limit": 200, "test_limit": 50},
        },
    ).json()
    member = created["members"][0]["experiment_id"]
    status, body = delete(client, f"/experiments/{member}", cancel="true")
    assert status == 409 and created["id"] in str(body["detail"])
    assert "DELETE /ablations/" in str(body["detail"])


def test_delete_an_ablation_keeping_shared_members(client: AppClient, engine: Engine) -> None:
    overrides = {"epochs": 1, "train_limit": 200, "test_limit": 50}
    first = client.post(
        "/ablations",
        json={
            "preset": "seed-baseline",
            "seeds": 1,
            "factors": {"loss": ["mse", "bce"]},
            "overrides": overrides,
        },
    ).json()
    second = client.post(
        "/ablations",
        json={
            "preset": "seed-baseline",
            "seeds": 1,
            "factors": {"loss": ["mse"]},
            "overrides": overrides,
        },
    ).json()
    ids = [m["experiment_id"] for m in first["members"]]
    shared = second["members"][0]["experiment_id"]
    assert shared in ids  # the mse arm was reused
    own = next(i for i in ids if i != shared)

    status, body = delete(client, f"/ablations/{first['id']}")
    assert status == 409 and "2 unfinished" not in str(body["detail"])
    assert "1 unfinished" in str(body["detail"])  # the shared one is not its to cancel

    status, body = delete(client, f"/ablations/{first['id']}", cancel="true")
    assert status == 200  # a queued member is cancelled and removed at once
    assert body["deleted_experiments"] == [own] and body["pending_experiments"] == []
    assert body["kept_shared"] == [shared]
    assert client.get(f"/ablations/{first['id']}").status_code == 404
    assert client.get(f"/experiments/{own}").status_code == 404
    assert client.get(f"/experiments/{shared}").json()["status"] == "queued"
    assert client.get(f"/ablations/{second['id']}").status_code == 200


def test_a_running_member_makes_the_ablation_deletion_pending(
    client: AppClient, engine: Engine
) -> None:
    created = client.post(
        "/ablations",
        json={
            "preset": "seed-baseline",
            "seeds": 1,
            "overrides": {"epochs": 1, "train_limit": 200, "test_limit": 50},
        },
    ).json()
    member = created["members"][0]["experiment_id"]
    with session_scope(engine) as session:
        attempt = runs.claim(session, member, worker="w", stale_after_s=60)
    assert attempt is not None
    status, body = delete(client, f"/ablations/{created['id']}", cancel="true")
    assert status == 202 and body["pending_experiments"] == [member]
    assert finish(engine, member, attempt, status=Status.cancelled)
    assert pruning.sweep_until_done(engine, keep_checkpoints=False).deleted == [member]


def test_openapi_documents_the_deletions(client: AppClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/experiments/{experiment_id}", "/ablations/{ablation_id}"):
        operation = paths[path]["delete"]
        assert {"200", "202", "404", "409"} <= set(operation["responses"]), path
        assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["cancel"]
