"""Two API processes on one PostgreSQL store, as a scaled-out deployment runs them: what one
changes, the other answers within its freshness bounds. A run deleted through one is gone
(404) in the other within TRAINLAB_POLL_FRESH_S, its finished curve, its state and its
outputs alike, although the other had them cached; a key revoked through one is refused by the
other within the key cache's 5 s; and an ETag never earns a 304 for content that changed
through the other process."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_mnist, require_postgres, require_redis
from tests.integration.drills import drill_body
from tests.integration.stack import TRAINLAB, Stack, start_production

pytestmark = pytest.mark.integration

FRESH_S = 0.5
KEY_CACHE_S = 5.0


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    require_postgres()
    require_redis()
    require_mnist()
    stack = start_production(
        Path(tmp_path_factory.mktemp("two_apis")),
        settings={"TRAINLAB_POLL_FRESH_S": str(FRESH_S)},
    )
    try:
        other = stack.start_api_beside("api2")
    except BaseException:
        stack.stop()
        raise
    yield stack, other
    stack.stop()


def _until(check: object, bound_s: float) -> float:
    """Seconds until `check()` holds, polled every 50 ms; fails past twice the bound."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < 2 * bound_s + 1, "the other process never saw it"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_deleted_run_is_gone_in_the_other_process(two: tuple[Stack, str]) -> None:
    stack, other = two
    created = stack.submit(drill_body(seed=21))
    finished = stack.wait_terminal(created["id"])
    assert finished["status"] == "succeeded", stack.logs()
    run = created["id"]
    with httpx.Client(base_url=other, timeout=30) as b:
        # The other process reads (and caches) the finished curve, state and outputs.
        for _ in range(2):
            assert b.get(f"/experiments/{run}/loss").status_code == 200
            assert b.get(f"/experiments/{run}").status_code == 200
            assert b.get(f"/experiments/{run}/predictions?records=1,2").status_code == 200
        with stack.client() as a:
            assert a.delete(f"/experiments/{run}").status_code == 200
        paths = [
            f"/experiments/{run}",
            f"/experiments/{run}/loss",
            f"/experiments/{run}/predictions",
        ]
        waited = _until(lambda: all(b.get(p).status_code == 404 for p in paths), FRESH_S)
    print(f"deleted through one API process: 404 in the other after {waited:.2f} s")
    assert waited <= FRESH_S + 0.5


def test_an_etag_never_answers_304_for_changed_content(two: tuple[Stack, str]) -> None:
    stack, other = two
    created = stack.submit(drill_body(seed=22, train_limit=20_000))
    run = created["id"]
    with httpx.Client(base_url=other, timeout=30) as b:
        stack.wait_for(run, lambda e: e["status"] == "running")
        first = b.get(f"/experiments/{run}")
        tag = first.headers["etag"]
        with stack.client() as a:
            assert a.post(f"/experiments/{run}/cancel", json={}).status_code == 202

        def shows_cancel() -> bool:
            # The old tag earns a 304 only while the other process still answers the old
            # body (fresh for the window); a body that changed comes with a new tag.
            answer = b.get(f"/experiments/{run}", headers={"If-None-Match": tag})
            if answer.status_code == 304:
                return False
            assert answer.status_code == 200 and answer.headers["etag"] != tag
            return bool(answer.json()["cancel_requested"])

        waited = _until(shows_cancel, FRESH_S)
        print(f"cancelled through one API process: shown by the other after {waited:.2f} s")
        assert waited <= FRESH_S + 0.5
        stack.wait_terminal(run)
        ended = b.get(f"/experiments/{run}/loss")
        assert (
            b.get(
                f"/experiments/{run}/loss", headers={"If-None-Match": ended.headers["etag"]}
            ).status_code
            == 304
        )  # nothing changed since: 304 is right


def _cli(stack: Stack, *argv: str) -> str:
    done = subprocess.run(
        [*TRAINLAB, *argv], cwd=stack.workdir, env=stack.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_revoked_key_is_refused_by_the_other_process(two: tuple[Stack, str]) -> None:
    stack, other = two
    admin = json.loads(_cli(stack, "keys", "create", "--name", "root", "--role", "admin", "--json"))
    member = json.loads(_cli(stack, "keys", "create", "--name", "ann", "--json"))
    as_member = {"Authorization": f"Bearer {member['key']}"}
    with httpx.Client(base_url=other, timeout=30, headers=as_member) as b:
        assert b.get("/experiments").status_code == 200  # now in the other's key cache
        with stack.client(headers={"Authorization": f"Bearer {admin['key']}"}) as a:
            assert a.delete(f"/keys/{member['prefix']}").status_code == 200
            assert a.get("/experiments", headers=as_member).status_code == 401
        waited = _until(lambda: b.get("/experiments").status_code == 401, KEY_CACHE_S)
    print(f"revoked through one API process: refused by the other after {waited:.2f} s")
    assert waited <= KEY_CACHE_S + 0.5
