"""A live trainlab stack for integration tests: real `trainlab` processes over real services.

`production` mode: `trainlab migrate`, `trainlab serve --no-worker` and `trainlab worker`
against a fresh PostgreSQL database and a Redis database of its own (or, for fault drills, a
server of the drill's own: tests/integration/services.py). `embedded` mode: `trainlab serve`
with no configuration at all, which migrates its SQLite store and starts its own worker on the
SQLite broker. Everything talks over HTTP through httpx.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from tests.conftest import (
    POSTGRES_URL,
    REPO,
    TEST_DATA_DIR,
    free_port,
    lease_redis_database,
    release_redis_database,
)
from worker.shutdown import descendants, kill_tree

TRAINLAB = [sys.executable, "-m", "cli"]
TERMINAL = {"succeeded", "failed", "cancelled"}

# What every stack runs with: the test data, one CPU thread, quiet logs.
BASE_SETTINGS = {
    "TRAINLAB_DATA_DIR": str(TEST_DATA_DIR),
    "TRAINLAB_ALLOW_DOWNLOAD": "false",
    "TRAINLAB_DEVICE": "cpu",
    "TRAINLAB_TORCH_THREADS": "1",
    "TRAINLAB_LOG_LEVEL": "warning",
}
# Short intervals so that cancellation, live curves and the reaper act within seconds. The
# fault drills also run without these (timings="defaults"), as an operator would.
TUNED_TIMINGS = {
    "TRAINLAB_FLUSH_INTERVAL_S": "0.5",
    "TRAINLAB_HEARTBEAT_TIMEOUT_S": "4",
    "TRAINLAB_REAPER_INTERVAL_S": "1",
    "TRAINLAB_CHECKPOINT_INTERVAL_S": "1",
    "TRAINLAB_RESEND_LOST_AFTER_S": "3",
    "TRAINLAB_STORE_PATIENCE_S": "60",
    "TRAINLAB_SHUTDOWN_GRACE_S": "8",
}
FAST_SETTINGS = {**BASE_SETTINGS, **TUNED_TIMINGS}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any TRAINLAB_* a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    api: subprocess.Popen[bytes] | None = None

    @property
    def api_pid(self) -> int:
        """The process that answers HTTP: `serve --no-worker`, or embedded `serve`."""
        if self.api is None:
            raise RuntimeError("this stack has no API process")
        return self.api.pid

    def worker_pids(self) -> list[int]:
        """Every process that trains or supervises training, as of now: the `trainlab worker`
        processes and their pool children, or embedded `serve`'s worker child and its pool.
        Benchmarks pin or profile these; a pool child forked later inherits its parent's CPU
        affinity, so pinning the ones alive now is enough."""
        if self.workers:
            pids: list[int] = []
            for worker in self.workers:
                if worker.poll() is None:
                    pids += [worker.pid, *descendants(worker.pid)]
            return pids
        return descendants(self.api_pid)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0, **kwargs)

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        # The child keeps its own copy of the descriptor; ours is closed at once.
        return self.spawn_with(args, name, {})

    def spawn_with(
        self, args: list[str], name: str, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [*TRAINLAB, *args],
                cwd=self.workdir,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """A `trainlab worker` in a session of its own; `env` overrides the stack's."""
        name = f"worker{len(self.workers)}"
        worker = self.spawn_with(["worker", "--loglevel=INFO"], name, env)
        self.workers.append(worker)
        return worker

    def start_api(self) -> subprocess.Popen[bytes]:
        api = self.spawn(["serve", "--no-worker"], "api")
        self.api = api
        return api

    def start_api_beside(self, name: str, timeout: float = 90.0) -> str:
        """Another `serve --no-worker` on the same store and broker (a scaled-out deployment's
        second API process), on a port of its own; its base URL once it answers /readyz."""
        port = free_port()
        self.spawn_with(["serve", "--no-worker"], name, {"TRAINLAB_PORT": str(port)})
        url = f"http://127.0.0.1:{port}"
        self.wait_ready(timeout, url)
        return url

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the process and every process below it (a Celery worker's pool processes
        sit in process groups of their own, so a group signal would miss them)."""
        if process.poll() is None:
            targets = [process.pid, *descendants(process.pid)]
            for pid in targets:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        process.wait(timeout=30)

    def wait_ready(self, timeout: float = 90.0, base_url: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{base_url or self.base_url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise RuntimeError(f"stack not ready after {timeout}s: {last}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    def full_logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                # Pool processes sit in groups of their own: kill the tree, not only the group.
                kill_tree(process.pid)
                process.wait(timeout=30)
        for cleanup in reversed(self.cleanups):
            cleanup()

    # Helpers the tests share --------------------------------------------------------------

    def submit(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.post("/experiments", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, experiment_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/experiments/{experiment_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def wait_for(
        self, experiment_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 300.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            experiment = self.get(experiment_id)
            if done(experiment):
                return experiment
            time.sleep(0.25)
        raise AssertionError(f"{experiment_id} still {experiment['status']}\n{self.logs()}")

    def wait_terminal(self, experiment_id: str, timeout: float = 300.0) -> dict[str, Any]:
        return self.wait_for(experiment_id, lambda e: e["status"] in TERMINAL, timeout)


def start_production(
    workdir: Path,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    broker_url: str | None = None,
) -> Stack:
    """API and worker processes against PostgreSQL (a database made for this stack) and Redis
    (a database of the shared server, or `broker_url`: a drill's own server)."""
    db_name = f"trainlab_it_{uuid.uuid4().hex[:8]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    redis_url = broker_url or lease_redis_database()
    redis_client = redis.Redis.from_url(redis_url)
    redis_client.flushdb()

    def drop_database() -> None:
        if broker_url is None:
            redis_client.flushdb()
            release_redis_database(redis_url)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    return start_services_stack(
        workdir,
        database_url=POSTGRES_URL.rsplit("/", 1)[0] + f"/{db_name}",
        broker_url=redis_url,
        workers=workers,
        settings=settings,
        cleanups=[drop_database],
    )


def start_services_stack(
    workdir: Path,
    *,
    database_url: str,
    broker_url: str,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    cleanups: list[Callable[[], None]] | None = None,
    tuned: bool = True,
) -> Stack:
    """`trainlab migrate`, then `serve --no-worker` and `workers` workers on the given store
    and broker; with `tuned=False` every timing setting is left at its shipped default."""
    port = free_port()
    env = clean_env(
        {
            **(FAST_SETTINGS if tuned else BASE_SETTINGS),
            **(settings or {}),
            "TRAINLAB_DATABASE_URL": database_url,
            "TRAINLAB_BROKER_URL": broker_url,
            "TRAINLAB_PORT": str(port),
            "TRAINLAB_STATE_DIR": str(workdir / "state"),
        }
    )
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=env, workdir=workdir)
    stack.cleanups.extend(cleanups or [])
    try:
        subprocess.run(
            [*TRAINLAB, "migrate"],
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        stack.start_api()
        for _ in range(workers):
            stack.start_worker()
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def start_embedded(
    workdir: Path, settings: dict[str, str] | None = None, *, tuned: bool = True
) -> Stack:
    """`trainlab serve` with no database or broker configured: SQLite and the SQLite broker
    (`tuned=False`: every timing setting at its shipped default)."""
    port = free_port()
    env = clean_env(
        {
            **(FAST_SETTINGS if tuned else BASE_SETTINGS),
            **(settings or {}),
            "TRAINLAB_PORT": str(port),
            "TRAINLAB_STATE_DIR": str(workdir / "state"),
        }
    )
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=env, workdir=workdir)
    try:
        # No --migrate: on the embedded default, serve brings its SQLite store to the schema.
        stack.api = stack.spawn(["serve"], "serve")
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def repo_root() -> Path:
    return REPO
