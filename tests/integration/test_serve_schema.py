"""`trainlab serve` and the schema: the embedded default brings its fresh SQLite store to the
schema by itself; a configured database whose schema is behind makes serve refuse to start
with a message saying what to run, instead of answering every request with 503; `--migrate`
upgrades it and serves."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from core.store.migrate import head_revision
from tests.integration.stack import (
    FAST_SETTINGS,
    TRAINLAB,
    Stack,
    clean_env,
    free_port,
)

pytestmark = pytest.mark.integration


def _serve(workdir: Path, database_url: str, *args: str) -> tuple[Stack, list[str]]:
    port = free_port()
    env = clean_env(
        {
            **FAST_SETTINGS,
            "TRAINLAB_PORT": str(port),
            "TRAINLAB_STATE_DIR": str(workdir / "state"),
            "TRAINLAB_DATABASE_URL": database_url,
        }
    )
    return Stack(base_url=f"http://127.0.0.1:{port}", env=env, workdir=workdir), [
        *TRAINLAB,
        "serve",
        "--no-worker",
        *args,
    ]


def test_the_embedded_store_is_migrated_by_serve(embedded_stack: Stack) -> None:
    # The shared embedded stack runs plain `trainlab serve`, no --migrate, no `migrate` step.
    database = embedded_stack.workdir / "state" / "trainlab.db"
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == head_revision()


@pytest.mark.parametrize("stamp", [None, "0000_older"], ids=["never-migrated", "behind"])
def test_a_configured_database_behind_its_schema_is_refused(
    tmp_path: Path, stamp: str | None
) -> None:
    database = tmp_path / "configured.db"
    with sqlite3.connect(database) as connection:
        if stamp:
            connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            connection.execute("INSERT INTO alembic_version VALUES (?)", (stamp,))
    stack, argv = _serve(tmp_path, f"sqlite:///{database}")
    refused = subprocess.run(
        argv, cwd=tmp_path, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2, refused.stderr
    assert "run `trainlab migrate`" in refused.stderr
    assert "trainlab serve --migrate" in refused.stderr
    if stamp:
        assert f"at revision {stamp}" in refused.stderr


def test_migrate_flag_upgrades_a_configured_database_and_serves(tmp_path: Path) -> None:
    database = tmp_path / "configured.db"
    stack, argv = _serve(tmp_path, f"sqlite:///{database}", "--migrate")
    stack.api = stack.spawn_with(argv[len(TRAINLAB) :], "serve", {})
    try:
        stack.wait_ready()
    finally:
        stack.stop()
