"""The compose file's own commands and settings, run for real on this machine.

For `migrate`, `api` and `worker` the test takes the service's `command` and its environment
(the image's ENV from the Dockerfile, then the service's `environment`, interpolated with
.env.example) and changes only what differs outside Docker, each change checked against what it
replaces: service host names become this machine's PostgreSQL (a database made for the test) and
Redis (a database number of its own), container paths become the test MNIST dir and a temp dir,
0.0.0.0:8000 becomes 127.0.0.1 on a free port, `trainlab` becomes this venv's, and `--device cuda`
becomes `cpu` where there is no GPU. Then one small experiment goes through the API.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from tests.conftest import (
    POSTGRES_URL,
    TEST_DATA_DIR,
    lease_redis_database,
    release_redis_database,
    require_mnist,
    require_postgres,
    require_redis,
)
from tests.deploy.composefile import (
    Dockerfile,
    environment_of,
    interpolate_tree,
    load_yaml,
    read_env_file,
    volume_targets,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

EXPERIMENT = {
    "preset": "seed-adam",
    "overrides": {"epochs": 1, "train_limit": 500, "test_limit": 200, "device": "cpu"},
}
DOCKER_STOP_TIMEOUT_S = 10.0  # what `docker compose stop` waits by default before SIGKILL


@dataclass
class Here:
    """Where the containers' services are on this machine."""

    database: str
    redis_url: str
    port: int
    state_dir: Path
    workdir: Path
    trainlab: Path = field(default_factory=lambda: Path(sys.executable).with_name("trainlab"))
    device: str = "cpu"


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    changes: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _swap_flag(service: Service, flag: str, expected: str, new: str) -> None:
    argv = service.argv
    if flag not in argv:
        return
    at = argv.index(flag) + 1
    assert argv[at] == expected, f"{service.name}: {flag} {argv[at]!r}, expected {expected!r}"
    argv[at] = new
    service.changes.append(f"{flag} {expected} -> {new}")


def _swap_env(service: Service, key: str, expected: str, new: str) -> None:
    env = service.env
    if key not in env:
        return
    assert env[key] == expected, f"{service.name}: {key}={env[key]!r}, expected {expected!r}"
    env[key] = new
    service.changes.append(f"{key}: {expected} -> {new}")


def container_service(compose: dict[str, Any], name: str, here: Here) -> Service:
    """The service's command and environment as its container would have them, made local."""
    env_file = {**read_env_file(), "POSTGRES_PASSWORD": "parity"}  # the one value left blank
    spec = interpolate_tree(compose, env_file)["services"][name]
    image_env = {k: v for k, v in Dockerfile.read().final_env().items() if k != "PATH"}
    service = Service(name, list(spec["command"]), {**image_env, **environment_of(spec)})

    assert service.argv[0] == "trainlab", service.argv
    assert here.trainlab.exists(), f"{here.trainlab} (pip install -e .)"
    service.argv[0] = str(here.trainlab)

    # Host names of the compose network -> this machine, keeping everything else of the URLs.
    compose_db = make_url(service.env["TRAINLAB_DATABASE_URL"])
    assert compose_db.host == "postgres" and compose_db.port == 5432, compose_db
    local_db = make_url(POSTGRES_URL)
    service.env["TRAINLAB_DATABASE_URL"] = compose_db.set(
        username=local_db.username,
        password=local_db.password,
        host=local_db.host,
        port=local_db.port,
        database=here.database,
    ).render_as_string(hide_password=False)
    broker = urlsplit(service.env["TRAINLAB_BROKER_URL"])
    assert broker.hostname == "redis" and broker.port == 6379, broker
    local_redis = urlsplit(here.redis_url)
    service.env["TRAINLAB_BROKER_URL"] = urlunsplit(
        broker._replace(netloc=local_redis.netloc, path=local_redis.path)
    )

    data_dir = service.env["TRAINLAB_DATA_DIR"]
    if name != "migrate":
        assert volume_targets(spec).get("datasets") == data_dir, (
            "the datasets volume is mounted there"
        )
    _swap_env(service, "TRAINLAB_DATA_DIR", data_dir, str(TEST_DATA_DIR))
    _swap_env(service, "TRAINLAB_STATE_DIR", "/var/lib/trainlab", str(here.state_dir))
    _swap_env(service, "TRAINLAB_HOST", "0.0.0.0", "127.0.0.1")
    _swap_env(service, "TRAINLAB_PORT", "8000", str(here.port))
    _swap_flag(service, "--host", "0.0.0.0", "127.0.0.1")
    _swap_flag(service, "--port", "8000", str(here.port))
    if here.device == "cpu":
        _swap_flag(service, "--device", "cuda", "cpu")
    return service


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def environ(self, service: Service) -> dict[str, str]:
        # Nothing of the developer's TRAINLAB_* leaks in: only what the container would have.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
        return {**inherited, **service.env}

    def run(self, service: Service, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            service.argv,
            cwd=self.workdir,
            env=self.environ(service),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, service: Service) -> None:
        # The child keeps its own copy of the descriptor; ours is closed at once.
        with (self.workdir / f"{service.name}.log").open("ab") as log:
            self.running[service.name] = subprocess.Popen(
                service.argv,
                cwd=self.workdir,
                env=self.environ(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    def stop(self, name: str, grace: float) -> float | None:
        """As `docker stop` does: SIGTERM to the main process, SIGKILL to all after the grace.
        Returns how long it took to exit on SIGTERM, or None if it had to be killed."""
        process = self.running.pop(name)
        started = time.monotonic()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                return None
        took = time.monotonic() - started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, like a cgroup kill
        return took

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name, grace=0.1)


@pytest.fixture
def here(tmp_path: Path) -> Iterator[Here]:
    require_postgres()
    require_redis()
    require_mnist()
    database = f"trainlab_parity_{uuid.uuid4().hex[:8]}"
    admin = (
        make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    redis_url = lease_redis_database()
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    workdir = tmp_path / "app"  # the container's WORKDIR: no .env, no source tree
    workdir.mkdir()
    try:
        yield Here(
            database=database,
            redis_url=redis_url,
            port=_free_port(),
            state_dir=tmp_path / "state",
            workdir=workdir,
            device="cuda" if _cuda_available() else "cpu",
        )
    finally:
        broker.flushdb()
        broker.close()
        release_redis_database(redis_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _wait_ready(base_url: str, processes: Processes, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for name, process in processes.running.items():
            assert process.poll() is None, (
                f"{name} exited with {process.returncode}\n{processes.logs()}"
            )
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"/readyz not ready after {timeout}s: {last}\n{processes.logs()}")


def _wait_terminal(
    client: httpx.Client, experiment_id: str, processes: Processes
) -> dict[str, Any]:
    deadline = time.monotonic() + 300.0
    while time.monotonic() < deadline:
        experiment: dict[str, Any] = client.get(f"/experiments/{experiment_id}").json()
        if experiment["status"] in {"succeeded", "failed", "cancelled"}:
            return experiment
        time.sleep(0.5)
    raise AssertionError(f"{experiment_id} did not finish\n{processes.logs()}")


def _healthcheck(compose: dict[str, Any], name: str, port: int) -> subprocess.CompletedProcess[str]:
    """The service's own healthcheck command, run here against the local port."""
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], test
    container_url = "http://127.0.0.1:8000/"
    assert any(container_url in arg for arg in test), test
    argv = [sys.executable, *(arg.replace(":8000/", f":{port}/") for arg in test[2:])]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_compose_services_run_an_experiment_here(here: Here) -> None:
    compose = load_yaml()
    migrate, api, worker = (
        container_service(compose, name, here) for name in ("migrate", "api", "worker")
    )
    # What was changed, for the failure message: everything else is the compose file's own.
    changes = {s.name: s.changes for s in (migrate, api, worker)}
    processes = Processes(here.workdir)
    try:
        migrated = processes.run(migrate, timeout=180)
        assert migrated.returncode == 0, f"{changes}\n{migrated.stdout}\n{migrated.stderr}"
        # The first admin key, as the README has the operator make it: `docker compose run
        # --rm migrate trainlab keys create ...`, the migrate service's image and environment.
        first_key = Service(
            "migrate",
            [migrate.argv[0], "keys", "create", "--name", "admin", "--role", "admin", "--json"],
            migrate.env,
        )
        issued = processes.run(first_key, timeout=60)
        assert issued.returncode == 0, issued.stderr
        key = json.loads(issued.stdout)["key"]

        processes.start(api)
        processes.start(worker)
        base_url = f"http://127.0.0.1:{here.port}"
        _wait_ready(base_url, processes)
        probe = _healthcheck(compose, "api", here.port)
        assert probe.returncode == 0, probe.stderr

        # The compose API requires keys.
        assert httpx.get(f"{base_url}/experiments").status_code == 401
        with httpx.Client(
            base_url=base_url, timeout=30.0, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            response = client.post("/experiments", json=EXPERIMENT)
            assert response.status_code == 201, response.text
            finished = _wait_terminal(client, response.json()["id"], processes)
            assert finished["status"] == "succeeded", f"{finished.get('error')}\n{processes.logs()}"

            spec = finished["spec"]
            steps = spec["epochs"] * math.ceil(spec["train_limit"] / spec["batch_size"])
            assert finished["progress"]["total"] == finished["progress"]["step"] == steps
            loss = client.get(f"/experiments/{finished['id']}/loss").json()
            every = spec["log_every"]
            assert len(loss["values"]) == steps // every
            assert loss["steps"] == list(range(every, steps + 1, every))

            records = client.get(
                f"/experiments/{finished['id']}/predictions", params={"records": "19"}
            ).json()["records"]
            assert records[0]["label"] == 4 and len(records[0]["outputs"]) == 10

        # `docker compose stop`: each exits on SIGTERM within its grace period.
        for name in ("worker", "api"):
            grace = compose["services"][name].get("stop_grace_period", DOCKER_STOP_TIMEOUT_S)
            grace_s = float(str(grace).rstrip("s"))
            assert processes.stop(name, grace=grace_s) is not None, processes.logs()
    finally:
        processes.stop_all()
