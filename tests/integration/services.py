"""PostgreSQL and Redis servers of a drill's own, on spare ports, that it may kill and restart.

The shared servers (127.0.0.1:5432 and :6379) are never stopped or flushed; a fault drill
starts its own from the same binaries. Redis runs without persistence (`--save ""
--appendonly no`, the default of many installs): a restart loses every message. Postgres runs
with fsync off (a test cluster) and is restarted with a fast shutdown, as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import free_port

_PG_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _pg_binary(name: str) -> str | None:
    for bindir in _PG_BINDIRS:
        if (bindir / name).exists():
            return str(bindir / name)
    return shutil.which(name)


def _require(binary: str | None, what: str) -> str:
    if binary is None:
        message = f"{what} is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must provide it")
        pytest.skip(message)
    return binary


class DrillPostgres:
    """A throwaway PostgreSQL cluster. As root it runs as the `postgres` user (initdb refuses
    root), its directory owned by that user."""

    def __init__(self, root: Path) -> None:
        self.initdb = _require(_pg_binary("initdb"), "PostgreSQL's initdb")
        self.pg_ctl = _require(_pg_binary("pg_ctl"), "PostgreSQL's pg_ctl")
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        self._run(
            [
                self.initdb,
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        self.start()

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["su", "postgres", "-c", " ".join(f"'{a}'" for a in argv)]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -F"
        self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, database: str = "postgres", **query: str) -> str:
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        base = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
        return f"{base}?{tail}" if tail else base

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/{database}", autocommit=True
        )

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class DrillRedis:
    """A Redis server without persistence: `restart()` comes back empty, as such an install
    does after a crash or a restart."""

    def __init__(self, root: Path) -> None:
        self.binary = _require(shutil.which("redis-server"), "redis-server")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def start(self) -> None:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
        ]
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if self.client().ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("drill Redis did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def drill_postgres() -> Iterator[DrillPostgres]:
    server = DrillPostgres(Path(tempfile.mkdtemp(prefix="trainlab-pg-")))
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def drill_redis() -> Iterator[DrillRedis]:
    server = DrillRedis(Path(tempfile.mkdtemp(prefix="trainlab-redis-")))
    try:
        yield server
    finally:
        server.close()


def kill_insert_into(
    conninfo: str,
    table: str,
    *,
    application_name: str,
    timeout_s: float = 60.0,
    held: threading.Event | None = None,
) -> int:
    """Terminate the backend of `application_name` in the middle of an INSERT into `table`,
    as `pg_terminate_backend` of that one connection does in production; returns its pid.

    To catch the INSERT in flight, the table is held (EXCLUSIVE: readers go on, writers wait)
    until that client's INSERT is seen waiting on it; then its backend is terminated and the
    table released. By default the table is held only once the client has been seen
    inserting (a resumed run's start deletes from it, and would wait instead); a caller whose
    client's first write to the table is an INSERT (a first attempt) passes `held`, and the
    table is held at once and `held` set, so the caller starts the client after it: a fast
    run cannot slip its INSERTs between two looks."""
    inserting = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
        "AND query ILIKE 'INSERT INTO loss_points%%'"
    )
    deadline = time.monotonic() + timeout_s
    with (
        psycopg.connect(conninfo) as holder,
        psycopg.connect(conninfo, autocommit=True) as watcher,
    ):
        if held is not None:
            holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            held.set()
        else:
            while watcher.execute(inserting, [application_name]).fetchone() is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{application_name} never inserted into {table}")
                time.sleep(0.01)
            holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO loss_points%%'",
                [application_name],
            ).fetchone()
            if row is not None:
                watcher.execute("SELECT pg_terminate_backend(%s)", [row[0]])
                return int(row[0])
            time.sleep(0.01)
    raise AssertionError(f"no INSERT into {table} from {application_name} in {timeout_s} s")
