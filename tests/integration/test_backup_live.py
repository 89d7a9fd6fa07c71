"""A backup taken while a real worker trains a run, restored into a fresh store on which a new
API and worker start: the run that was training resumes from the checkpoint it had stored
and ends with the exact series of an uninterrupted run (every step once, bit-identical), the
run that had finished is there unchanged. On PostgreSQL (pg_dump) and on the embedded SQLite
store (the online backup API)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import (
    ADMIN_URL,
    POSTGRES_URL,
    lease_redis_database,
    release_redis_database,
    require_mnist,
    require_postgres,
    require_redis,
)
from tests.integration.drills import assert_exact, drill_body
from tests.integration.stack import (
    BASE_SETTINGS,
    TRAINLAB,
    Stack,
    clean_env,
    start_embedded,
    start_production,
    start_services_stack,
)

pytestmark = pytest.mark.integration


def _cli(stack_env: dict[str, str], cwd: Path, *argv: str) -> str:
    done = subprocess.run(
        [*TRAINLAB, *argv], cwd=cwd, env=stack_env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    print(done.stdout, end="")
    return done.stdout


def _train_and_back_up(stack: Stack, backup: Path) -> tuple[dict[str, object], dict[str, object]]:
    """One run finished, one run mid-training (a checkpoint stored) when the backup is taken."""
    try:
        return _train(stack, backup)
    finally:
        stack.stop()


def _train(stack: Stack, backup: Path) -> tuple[dict[str, object], dict[str, object]]:
    # The live run is long enough to still train while the backup is taken.
    done_body, live_body = drill_body(seed=11), drill_body(seed=12, train_limit=20_000)
    finished = stack.wait_terminal(stack.submit(done_body)["id"])
    assert finished["status"] == "succeeded", stack.logs()
    live = stack.submit(live_body)
    # Checkpoints come every second (tuned timings): a quarter in, one is stored.
    stack.wait_for(
        live["id"],
        lambda e: e["status"] == "running" and e["progress"]["step"] * 4 > e["progress"]["total"],
    )
    _cli(stack.env, stack.workdir, "backup", "--to", str(backup))
    during = stack.get(live["id"])
    assert during["status"] == "running"  # the backup did not disturb the run
    return {"finished": finished, "body": done_body}, {"live": live, "body": live_body}


def _finish_on(stack: Stack, before: dict[str, object], live: dict[str, object]) -> None:
    finished = before["finished"]
    assert isinstance(finished, dict)
    assert stack.get(finished["id"])["status"] == "succeeded"
    assert_exact(stack, finished, before["body"])  # type: ignore[arg-type]
    run = live["live"]
    assert isinstance(run, dict)
    ended = stack.wait_terminal(run["id"], timeout=240)
    assert ended["status"] == "succeeded", (ended["error"], stack.logs())
    assert ended["attempt"] == 2  # the original claim, then one resume on the new store
    assert_exact(stack, ended, live["body"])  # type: ignore[arg-type]


def test_backup_while_training_restored_into_a_fresh_postgres(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    require_mnist()
    backup = tmp_path / "store.dump"
    (tmp_path / "a").mkdir()
    before, live = _train_and_back_up(start_production(tmp_path / "a"), backup)

    name = f"trainlab_it_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    redis_url = lease_redis_database()

    def drop() -> None:
        release_redis_database(redis_url)
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = {**before_env(), "TRAINLAB_DATABASE_URL": url}
        out = _cli(env, tmp_path, "restore", "--from", str(backup))
    except BaseException:
        drop()
        raise
    assert "1 requeued to resume from their checkpoint" in out
    (tmp_path / "b").mkdir()
    stack = start_services_stack(
        tmp_path / "b", database_url=url, broker_url=redis_url, cleanups=[drop]
    )
    try:
        _finish_on(stack, before, live)
    finally:
        stack.stop()


def test_backup_while_training_restored_into_a_fresh_sqlite(tmp_path: Path) -> None:
    require_mnist()
    backup = tmp_path / "store.sqlite"
    (tmp_path / "a").mkdir()
    before, live = _train_and_back_up(start_embedded(tmp_path / "a"), backup)
    (tmp_path / "b").mkdir()
    env = {**before_env(), "TRAINLAB_STATE_DIR": str(tmp_path / "b" / "state")}
    out = _cli(env, tmp_path, "restore", "--from", str(backup))
    assert "1 requeued to resume from their checkpoint" in out
    stack = start_embedded(tmp_path / "b")
    try:
        _finish_on(stack, before, live)
    finally:
        stack.stop()


def before_env() -> dict[str, str]:
    return clean_env(dict(BASE_SETTINGS))
