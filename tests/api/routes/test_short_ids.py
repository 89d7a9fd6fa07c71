"""Short ids: any unique prefix of 8 or more characters stands for the full id in a path, on
SQLite and PostgreSQL alike (the engine fixture runs each test on both)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from core.store import experiments
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.recorded_runs import small_spec


def _queued(engine: Engine, experiment_id: str) -> str:
    """A queued experiment stored under the id given (a uuid4 hex would never share a prefix)."""
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, small_spec())
        made = experiment.id
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE experiments SET id = :new WHERE id = :old"),
            {"new": experiment_id, "old": made},
        )
    return experiment_id


def test_a_unique_prefix_answers_as_the_full_id(client: AppClient, engine: Engine) -> None:
    full = _queued(engine, "abcdef01" + "2" * 24)
    _queued(engine, "abcdef02" + "3" * 24)
    whole = client.get(f"/experiments/{full}")
    assert whole.status_code == 200
    for prefix in (full[:8], full[:9], full[:31]):
        short = client.get(f"/experiments/{prefix}")
        assert short.status_code == 200, short.text
        assert short.json() == whole.json()
    assert client.get(f"/experiments/{full[:8]}/loss").status_code == 200


def test_a_prefix_of_several_is_409_listing_them(client: AppClient, engine: Engine) -> None:
    ids = [_queued(engine, f"feedbeef{n:024x}") for n in range(12)]
    response = client.get("/experiments/feedbeef")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert ids[0] in detail and ids[9] in detail and ids[10] not in detail, detail
    assert detail.endswith("give more characters") and ", ..." in detail
    unique = client.get(f"/experiments/{ids[11][:8]}{ids[11][8:]}")  # the full id: no lookup
    assert unique.status_code == 200


def test_a_prefix_under_8_characters_is_422(client: AppClient, engine: Engine) -> None:
    full = _queued(engine, "0123abcd" + "e" * 24)
    for path in (f"/experiments/{full[:7]}", f"/ablations/{full[:7]}", f"/sweeps/{full[:4]}"):
        response = client.get(path)
        assert response.status_code == 422, path
        assert "at least 8 characters" in response.json()["detail"]


def test_a_prefix_of_none_is_404(client: AppClient, engine: Engine) -> None:
    _queued(engine, "0123abcd" + "e" * 24)
    for path, message in (
        ("/experiments/0123abce", "no experiment with id '0123abce'"),
        ("/experiments/0123ABCD", "no experiment with id '0123ABCD'"),  # ids are lowercase
        ("/ablations/0123abcd", "no ablation with id '0123abcd'"),
        ("/sweeps/0123abcd", "sweep 0123abcd not found"),
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"] == message
