"""Conditional GETs of what pollers read: every change of the answer gives a new strong ETag,
an unchanged answer is a 304 without a body, and a tag never stands in for a key. On SQLite
and Postgres, through the app."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from api.schemas import ExperimentPublic
from core.keys import Role
from core.store import experiments, keys, runs
from core.store.models import Experiment, Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.core.store.helpers import finish, running, write_loss


def _tag(client: AppClient, path: str, **params: int) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["cache-control"] == "no-cache"
    return etag


def _unchanged(client: AppClient, path: str, etag: str, **params: int) -> None:
    again = client.get(path, params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304, again.text
    assert again.content == b"" and again.headers["etag"] == etag


def test_each_kind_of_change_gives_a_new_experiment_etag(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    path = f"/experiments/{experiment_id}"
    seen = [_tag(client, path)]
    _unchanged(client, path, seen[-1])

    def changed(what: str) -> None:
        etag = _tag(client, path)
        assert etag not in seen, f"{what} left the ETag as it was"
        seen.append(etag)
        _unchanged(client, path, etag)
        # The old tag is stale now: a full answer, with the new tag.
        stale = client.get(path, headers={"If-None-Match": seen[-2]})
        assert stale.status_code == 200 and stale.headers["etag"] == etag

    with session_scope(engine) as session:
        runs.heartbeat(session, experiment_id, attempt, step=100, total_steps=2000)
    changed("a step")
    with session_scope(engine) as session:  # same step, a fresh heartbeat and device
        runs.heartbeat(session, experiment_id, attempt, step=100, total_steps=2000, device="cpu")
    changed("a heartbeat")
    with session_scope(engine) as session:
        assert runs.requeue(session, experiment_id, expected_attempt=attempt)
    changed("a requeue")
    with session_scope(engine) as session:
        second = runs.claim(session, experiment_id, worker="test:2", stale_after_s=60)
    assert second == attempt + 1
    changed("a new attempt")
    with session_scope(engine) as session:
        experiments.request_cancel(session, experiment_id)
    changed("a cancel request")
    assert finish(engine, experiment_id, second, Status.cancelled, metrics={"final_loss": 0.5})
    changed("the end with metrics")
    # A finished experiment keeps its tag; the tag still matches as a weak one or in a list.
    _unchanged(client, path, seen[-1])
    for header in (f"W/{seen[-1]}", f'"nope", {seen[-1]}', "*"):
        assert client.get(path, headers={"If-None-Match": header}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"nope"'}).status_code == 200
    # Deleted: 404, whatever tag is sent.
    assert client.delete(path).status_code == 200
    assert client.get(path, headers={"If-None-Match": seen[-1]}).status_code == 404


def test_loss_polls_get_304_until_new_points_or_a_new_status(
    client: AppClient, engine: Engine
) -> None:
    experiment_id, attempt = running(engine)
    path = f"/experiments/{experiment_id}/loss"
    write_loss(engine, experiment_id, attempt, [10, 20], [0.9, 0.8])
    first = _tag(client, path, since_step=10)
    _unchanged(client, path, first, since_step=10)
    # Another window of the same curve is another answer.
    assert _tag(client, path, since_step=0) != first
    assert _tag(client, path, since_step=10, max_points=2) == first  # nothing to downsample

    write_loss(engine, experiment_id, attempt, [30], [0.7])
    fresh = client.get(path, params={"since_step": 10}, headers={"If-None-Match": first})
    assert fresh.status_code == 200 and fresh.json()["steps"] == [20, 30]
    second = fresh.headers["etag"]
    assert second != first
    _unchanged(client, path, second, since_step=10)
    # Polling past the end: no points, and 304 until the status changes.
    empty = _tag(client, path, since_step=30)
    _unchanged(client, path, empty, since_step=30)
    assert finish(engine, experiment_id, attempt, Status.succeeded, step=30)
    ended = client.get(path, params={"since_step": 30}, headers={"If-None-Match": empty})
    assert ended.status_code == 200 and ended.json()["status"] == "succeeded"
    done = ended.headers["etag"]
    assert done != empty
    _unchanged(client, path, done, since_step=30)  # now from the finished series
    assert client.delete(f"/experiments/{experiment_id}").status_code == 200
    gone = client.get(path, params={"since_step": 30}, headers={"If-None-Match": done})
    assert gone.status_code == 404


def test_a_matching_etag_never_stands_in_for_a_key(guarded: AppClient, engine: Engine) -> None:
    with session_scope(engine) as session:
        _, viewer = keys.create_key(session, "carol", Role.viewer)
    experiment_id, attempt = running(engine)
    write_loss(engine, experiment_id, attempt, [10], [0.9])
    carol = {"Authorization": f"Bearer {viewer}"}
    for path in (f"/experiments/{experiment_id}", f"/experiments/{experiment_id}/loss"):
        etag = guarded.get(path, headers=carol).headers["etag"]
        assert guarded.get(path, headers={**carol, "If-None-Match": etag}).status_code == 304
        for who in ({}, {"Authorization": "Bearer tlk_nonsense"}):
            refused = guarded.get(path, headers={**who, "If-None-Match": etag})
            assert refused.status_code == 401 and refused.content != b""


def test_an_unchanged_row_reuses_the_answer_and_a_changed_one_rebuilds_it(
    client: AppClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, attempt = running(engine)
    built: list[str] = []
    real = ExperimentPublic.of

    def counting(experiment: Experiment) -> ExperimentPublic:
        built.append(experiment.id)
        return real(experiment)

    monkeypatch.setattr(ExperimentPublic, "of", staticmethod(counting))
    path = f"/experiments/{experiment_id}"
    first = client.get(path)
    for _ in range(3):
        again = client.get(path)
        assert again.content == first.content
    assert built == [experiment_id]  # built once, then reused
    with session_scope(engine) as session:
        runs.heartbeat(session, experiment_id, attempt, step=7, total_steps=2000)
    moved = client.get(path).json()
    assert moved["progress"]["step"] == 7 and built == [experiment_id] * 2
