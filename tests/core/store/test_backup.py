"""Backups and restores on both stores (core/store/backup.py, restored.py): a restored store
holds the same rows, runs that were training are requeued (or failed, or cancelled, as the
rules say) and nothing else changes; a newer schema and a store that is not empty are refused
with the target untouched; an older schema is migrated. Each test takes fresh databases (a
file, or a database of its own on the test server): pg_dump dumps a whole database."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import SQLModel

from core.store import artifacts
from core.store.backup import BackupRefused, backup, read_backup, restore
from core.store.migrate import head_revision, schema_state, upgrade_to_head
from core.store.models import Status
from core.store.restored import CANCELLED, NO_CHECKPOINT, reconcile
from core.store.session import make_engine, session_scope
from tests.conftest import ADMIN_URL, POSTGRES_URL, require_postgres
from tests.core.store.helpers import migrate_to, queued, read, running, write_loss
from tests.core.store.test_retention import full_run

NewStore = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewStore]:
    """Makes empty databases of the test's backend; drops them afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"trainlab_bk_{uuid.uuid4().hex[:10]}"
        made.append(name)
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"

    if request.param == "postgres":
        require_postgres()
    yield make
    if request.param == "postgres":
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            for name in made:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in key order: what "the same store" means."""
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in SQLModel.metadata.sorted_tables
        }


def test_a_restored_store_holds_the_same_rows_and_requeues_what_ran(
    new_store: NewStore, tmp_path: Path
) -> None:
    source_url = new_store()
    upgrade_to_head(source_url)
    source = make_engine(source_url)
    try:
        done = full_run(source)
        waiting = queued(source, seed=1)
        resumes, attempt = running(source, seed=2)
        write_loss(source, resumes, attempt, range(10, 60, 10), [0.25] * 5)
        with session_scope(source) as session:
            assert artifacts.save_checkpoint(session, resumes, attempt, 50, b"k" * 900)
        fresh, _ = running(source, seed=3)  # no checkpoint yet
        stopping, _ = running(source, seed=4)
        with session_scope(source) as session:
            session.execute(
                text("UPDATE experiments SET cancel_requested = :t WHERE id = :id"),
                {"t": True, "id": stopping},
            )
        before = _dump(source)
        taken = backup(source_url, tmp_path / "store.backup")
    finally:
        source.dispose()
    assert taken.revision == head_revision()
    assert read_backup(tmp_path / "store.backup") == taken

    target_url = new_store()
    assert restore(target_url, tmp_path / "store.backup") == taken
    target = make_engine(target_url)
    try:
        assert _dump(target) == before  # the load itself changes nothing
        with session_scope(target) as session:
            report = reconcile(session)
        assert (report.requeued, report.restarted) == ([resumes], [fresh])
        assert (report.cancelled, report.failed) == ([stopping], [])
        resumed = read(target, resumes)
        assert (resumed.status, resumed.dispatched_at, resumed.handbacks) == ("queued", None, 1)
        assert resumed.attempt == attempt  # a hand-back: not a lost attempt
        assert read(target, fresh).status == Status.queued
        assert (read(target, stopping).status, read(target, stopping).error) == (
            "cancelled",
            CANCELLED,
        )
        after = _dump(target)
        # Only the reconciled runs changed; the ended and the queued ones did not.
        for name in ("loss_points", "experiment_models", "experiment_checkpoints"):
            assert after[name] == before[name]
        # The cancelled run's (empty) series was packed as it ended; no other series changed.
        assert [r for r in after["experiment_series"] if r[0] != stopping] == before[
            "experiment_series"
        ]
        ids = {done, waiting}
        assert [r for r in after["experiments"] if r[0] in ids] == [
            r for r in before["experiments"] if r[0] in ids
        ]
        with session_scope(target) as session:
            assert artifacts.get_checkpoint(session, resumes) == (50, b"k" * 900)
    finally:
        target.dispose()


def test_runs_without_a_checkpoint_may_be_failed_instead(
    new_store: NewStore, tmp_path: Path
) -> None:
    url = new_store()
    upgrade_to_head(url)
    for engine in _engine(url):
        fresh, _ = running(engine)
        with session_scope(engine) as session:
            report = reconcile(session, fail_without_checkpoint=True)
        assert report.failed == [fresh]
        assert (read(engine, fresh).status, read(engine, fresh).error) == ("failed", NO_CHECKPOINT)


def test_a_backup_of_a_newer_schema_is_refused(new_store: NewStore, tmp_path: Path) -> None:
    source_url = new_store()
    upgrade_to_head(source_url)
    for engine in _engine(source_url):
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    backup(source_url, tmp_path / "newer.backup")
    target_url = new_store()
    with pytest.raises(BackupRefused, match=r"revision '0099_future'.*newer release"):
        restore(target_url, tmp_path / "newer.backup")
    for engine in _engine(target_url):
        assert schema_state(engine).current is None  # untouched


def test_an_older_schema_is_migrated_and_a_full_target_refused(
    new_store: NewStore, tmp_path: Path
) -> None:
    source_url = new_store()
    for engine in _engine(source_url):
        with engine.begin() as connection:
            migrate_to(connection, source_url, "0005")
    assert backup(source_url, tmp_path / "old.backup").revision == "0005"
    target_url = new_store()
    assert restore(target_url, tmp_path / "old.backup").revision == "0005"
    for engine in _engine(target_url):
        assert schema_state(engine).ready
    with pytest.raises(BackupRefused, match="already holds a trainlab store"):
        restore(target_url, tmp_path / "old.backup")
    restore(target_url, tmp_path / "old.backup", replace=True)
    for engine in _engine(target_url):
        assert schema_state(engine).ready


def test_what_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello")
    with pytest.raises(BackupRefused, match="not a trainlab backup"):
        read_backup(junk)
    with pytest.raises(BackupRefused, match="no trainlab store"):
        backup(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "x")
