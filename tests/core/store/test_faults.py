"""Transient or permanent, told from real errors of both stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, text

from core.store.faults import describe, is_disk_full, is_store_error, is_transient
from core.store.session import make_engine
from tests.conftest import ADMIN_URL, POSTGRES_URL, require_postgres


def _error(engine: Engine, sql: str, **params: Any) -> Exception:
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    except Exception as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


def test_sqlite_locked_is_transient_while_too_big_and_no_table_are_permanent(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _limits(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (b BLOB)"))
    too_big = _error(engine, "INSERT INTO t VALUES (:b)", b=b"x" * 5000)
    assert is_store_error(too_big) and not is_transient(too_big)
    assert "DataError: string or blob too big" in describe(too_big)
    no_table = _error(engine, "SELECT * FROM missing")
    assert not is_transient(no_table)

    holder = sqlite3.connect(tmp_path / "faults.db")
    holder.execute("BEGIN IMMEDIATE")
    try:
        locked = _error(engine, "INSERT INTO t VALUES (:b)", b=b"x")
    finally:
        holder.rollback()
        holder.close()
    assert "database is locked" in str(locked) and is_transient(locked)
    engine.dispose()


def test_postgres_lost_connection_is_transient_while_refusals_are_permanent() -> None:
    require_postgres()
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            with pytest.raises(Exception) as dropped:
                connection.execute(text("SELECT 1"))
        assert is_transient(dropped.value), describe(dropped.value)
        out_of_range = _error(engine, "SELECT CAST(:n AS smallint)", n=10**6)
        assert "DataError" in describe(out_of_range) and not is_transient(out_of_range)
        division = _error(engine, "SELECT 1 / (SELECT 0)")
        assert not is_transient(division)
    finally:
        engine.dispose()


def test_other_errors_are_not_the_store_s() -> None:
    assert not is_store_error(ValueError("x")) and not is_transient(ValueError("x"))


def test_out_of_space_is_transient_on_both_stores(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (b BLOB)"))

    @event.listens_for(engine, "checkout")
    def _no_room(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA max_page_count = 1")  # clamps to the pages in use

    full = _error(engine, "INSERT INTO t VALUES (:b)", b=b"x" * 20_000)
    assert "database or disk is full" in describe(full)
    assert is_disk_full(full) and is_transient(full)
    engine.dispose()

    require_postgres()
    engine = make_engine(POSTGRES_URL)
    try:
        # The server's own error of that class (SQLSTATE 53100, what PostgreSQL raises when it
        # cannot extend a file), raised on purpose: filling a real disk is not for a test.
        disk_full = _error(
            engine,
            "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full', "
            "MESSAGE = 'could not extend file: No space left on device'; END $$",
        )
        assert isinstance(disk_full.orig, psycopg.errors.DiskFull)  # type: ignore[attr-defined]
        assert is_disk_full(disk_full) and is_transient(disk_full)
        lost = _error(engine, "SELECT 1 / (SELECT 0)")
        assert not is_disk_full(lost)
    finally:
        engine.dispose()
