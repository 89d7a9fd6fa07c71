"""Backups of a live store, and restores into an empty one (`trainlab backup`, `restore`).

A backup is one file, a consistent snapshot taken while runs train:
- PostgreSQL: `pg_dump --format=custom`, which reads every table in one repeatable-read
  transaction (writers go on; only a schema change would wait for it);
- SQLite: the online backup API (`sqlite3.Connection.backup`, in one step, so one read
  transaction), never a copy of the file, which may be caught between a page and its WAL frame.

The file says itself what it is (pg_dump's "PGDMP" magic, SQLite's header) and carries the
schema revision, Alembic's `alembic_version` row, so a restore checks it before touching the
target: a revision this trainlab does not know (a backup of a newer release) is refused; an
older one is migrated to head after the load. The target must hold no trainlab store unless
`replace` is asked for. What a restored store then does with its runs is core/store/restored.py.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import URL, make_url

from core.store.migrate import FUNCTIONS, alembic_config, head_revision, upgrade_to_head
from core.store.session import make_engine

_PG_MAGIC = b"PGDMP"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_ROOT = Path("/usr/lib/postgresql")
# `pg_restore --data-only --table=alembic_version -f -` prints the row after this line.
_VERSION_COPY = re.compile(r"^COPY \S*alembic_version \(version_num\) FROM stdin;\n(\S+)\n", re.M)


class BackupRefused(Exception):
    """A backup or restore that would be wrong; the message says why and what to do."""


@dataclass(frozen=True)
class BackupFile:
    backend: str  # "postgresql" or "sqlite"
    revision: str


def backend_of(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def backup(url: str, target: Path, *, pg_bin_dir: Path | None = None) -> BackupFile:
    """Snapshot the store at `url` into the file `target` (written whole, then renamed)."""
    revision = _store_revision(url)
    if revision is None:
        raise BackupRefused("the database holds no trainlab store (run `trainlab migrate`)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if backend_of(url) == "sqlite":
            _sqlite_backup(_sqlite_path(url), partial)
        else:
            conninfo, env = _libpq(url)
            _run(
                [_pg_tool("pg_dump", pg_bin_dir), "--format=custom", f"--file={partial}", conninfo],
                env,
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(backend=backend_of(url), revision=revision)


def read_backup(source: Path, *, pg_bin_dir: Path | None = None) -> BackupFile:
    """What the backup file is and the schema revision it was taken at."""
    with source.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(_PG_MAGIC):
        listing = _run(
            [
                _pg_tool("pg_restore", pg_bin_dir),
                "--data-only",
                "--table=alembic_version",
                "--file=-",
                str(source),
            ],
            dict(os.environ),
        )
        found = _VERSION_COPY.search(listing)
        if found is None:
            raise BackupRefused(f"{source} is a PostgreSQL dump without a trainlab schema revision")
        return BackupFile(backend="postgresql", revision=found[1])
    if head == _SQLITE_MAGIC:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as db:
            try:
                row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.OperationalError:
                row = None
        if row is None:
            raise BackupRefused(f"{source} is a SQLite database without a trainlab schema revision")
        return BackupFile(backend="sqlite", revision=str(row[0]))
    raise BackupRefused(f"{source} is not a trainlab backup (neither a pg_dump nor a SQLite file)")


def restore(
    url: str, source: Path, *, replace: bool = False, pg_bin_dir: Path | None = None
) -> BackupFile:
    """Load the backup into the store at `url` and migrate it to this trainlab's head.
    Refused, with the target untouched, when the backup is of the other backend, of a newer
    schema, or when the target already holds a store and `replace` is not given."""
    found = read_backup(source, pg_bin_dir=pg_bin_dir)
    if found.backend != backend_of(url):
        raise BackupRefused(
            f"{source} is a {found.backend} backup; the store at the target is {backend_of(url)}"
        )
    _check_known(found.revision)
    if _holds_store(url):
        if not replace:
            raise BackupRefused(
                "the target database already holds a trainlab store: restore into an empty "
                "database, or pass --replace to drop what it holds (stop its servers first)"
            )
        _drop_everything(url)
    if found.backend == "sqlite":
        _sqlite_load(source, _sqlite_path(url))
    else:
        conninfo, env = _libpq(url)
        tool = _pg_tool("pg_restore", pg_bin_dir)
        _run(
            [
                tool,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={conninfo}",
                str(source),
            ],
            env,
        )
    if found.revision != head_revision():
        upgrade_to_head(url)
    return found


def _check_known(revision: str) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupRefused(
            f"the backup's schema is at revision {revision!r}, which this trainlab does not "
            f"know (its newest is {head_revision()!r}): it was taken by a newer release; "
            "restore it with that release or a later one"
        )


def _store_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            from core.store.migrate import current_revision

            return current_revision(connection)
    finally:
        engine.dispose()


def _holds_store(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return bool(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _drop_everything(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            tables = MetaData()
            tables.reflect(connection)
            tables.drop_all(connection)
            if connection.dialect.name == "postgresql":
                for function in FUNCTIONS:
                    connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
    finally:
        engine.dispose()


# SQLite ------------------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite store cannot be backed up or restored")
    return Path(database)


def _sqlite_backup(database: Path, target: Path) -> None:
    if not database.exists():
        raise BackupRefused(f"no SQLite store at {database}")
    # The busy timeout covers a writer holding the lock at the moment the read starts.
    with (
        closing(sqlite3.connect(database, timeout=30)) as live,
        closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)  # pages=-1: every page in one step, one consistent read
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it


def _sqlite_load(source: Path, database: Path) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as backup_db,
        closing(sqlite3.connect(database, timeout=30)) as target,
    ):
        backup_db.backup(target)


# PostgreSQL --------------------------------------------------------------------------------


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, the password moved to the environment (not the argv, which
    every user of the machine can read)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_tool(name: str, bin_dir: Path | None) -> str:
    """`bin_dir`'s tool, else the newest installed server's, else the one on PATH: pg_dump
    must be at least as new as the server it dumps."""
    candidates = [bin_dir] if bin_dir is not None else []
    installed = [d for d in _PG_ROOT.glob("*/bin") if d.parent.name.isdigit()]
    candidates += sorted(installed, key=lambda d: int(d.parent.name), reverse=True)
    for directory in candidates:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(f"{name} not found: install PostgreSQL's client tools")
    return found


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tool = Path(argv[0]).name
        raise BackupRefused(f"{tool} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout
