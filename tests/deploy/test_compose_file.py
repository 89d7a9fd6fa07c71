"""docker-compose.yml, .env.example and the Dockerfile: valid against the compose specification,
and shaped the way the README's "Deploy on a GPU host" promises (health-gated start order, GPU
workers that scale, persistence, no secret with a working default, the same torch as
pyproject.toml)."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.deploy.composefile import (
    COMPOSE_FILE,
    WORKER_COMPOSE_FILE,
    Dockerfile,
    InterpolationError,
    environment_of,
    interpolate_tree,
    load_yaml,
    read_env_file,
    required_variables,
    variables_used,
    volume_targets,
)

VALIDATOR = REPO / ".ci" / "validate-compose"
TRAINLAB_SERVICES = ("migrate", "api", "worker", "worker-cpu")
MISSING_TOOL = 3  # .ci/validate-compose's exit code when a validator is not installed


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(VALIDATOR), "--no-install", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode == MISSING_TOOL:
        message = f"compose validators not installed ({result.stderr.strip()})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run must run .ci/validate-compose first")
        pytest.skip(message)
    return result


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    # The password is the one value .env.example leaves for the user to fill in.
    env = {**read_env_file(), "POSTGRES_PASSWORD": "s3cret"}
    resolved: dict[str, Any] = interpolate_tree(compose, env)["services"]
    return resolved


@pytest.mark.parametrize("path", [COMPOSE_FILE, WORKER_COMPOSE_FILE], ids=lambda p: p.name)
def test_compose_file_is_valid(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("original", "typo", "named_in_error"),
    [
        # A misspelt key: the schema pass rejects it.
        ("    depends_on:\n      migrate:", "    depends_onn:\n      migrate:", "depends_onn"),
        # A condition the spec doesn't have.
        (
            "condition: service_completed_successfully",
            "condition: service_completed_succesfully",
            "service_completed_succesfully",
        ),
        # A dependency on a service that doesn't exist: only compose's own `config` sees it.
        ("      migrate:\n        condition:", "      migrat:\n        condition:", "migrat"),
    ],
    ids=["misspelt-key", "bad-condition", "undefined-service"],
)
def test_validation_fails_on_a_typo(
    tmp_path: Path, original: str, typo: str, named_in_error: str
) -> None:
    text = COMPOSE_FILE.read_text()
    assert original in text, "the test's anchor text is gone from docker-compose.yml"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(original, typo, 1))
    result = validate(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert named_in_error in result.stdout + result.stderr


def test_postgres_keeps_its_data_and_reports_health(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert volume_targets(postgres).get("postgres-data") == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres, "the database is reachable only inside the compose network"


def test_redis_persists_queued_work(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert volume_targets(redis).get("redis-data") == "/data"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert "ports" not in redis


def test_start_order_is_gated_on_health_and_migrations(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["trainlab", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    for name in ("api", "worker", "worker-cpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_api_serves_on_8000_without_a_worker(services: dict[str, Any]) -> None:
    api = services["api"]
    command = api["command"]
    assert command[:2] == ["trainlab", "serve"]
    assert command[command.index("--port") + 1] == "8000"
    assert [port.rsplit(":", 1)[-1] for port in api["ports"]] == ["8000"]
    assert api["ports"][0].startswith("127.0.0.1:"), "published on loopback unless .env opens it"
    assert environment_of(api)["TRAINLAB_EMBEDDED_WORKER"] == "false"
    probe = " ".join(api["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in probe


def test_api_stop_grace_outlasts_its_drain(services: dict[str, Any]) -> None:
    """`serve` drains for TRAINLAB_SHUTDOWN_GRACE_S on SIGTERM: Docker must wait longer than
    that before its SIGKILL, or a stop cuts requests and event streams short."""
    from core.settings import Settings

    drain_s = Settings.model_fields["shutdown_grace_s"].default
    grace = str(services["api"].get("stop_grace_period", "10s"))
    assert grace.endswith("s") and float(grace[:-1]) > drain_s


def test_gpu_worker_reserves_one_gpu_and_scales(services: dict[str, Any]) -> None:
    worker = services["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    assert device["driver"] == "nvidia"
    # `--scale worker=N` needs replicas that don't clash: no fixed name, no host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    command = worker["command"]
    assert command[:2] == ["trainlab", "worker"]
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--device") + 1] == "cuda"
    assert "profiles" not in worker, "`docker compose up` starts the GPU worker"


def test_cpu_worker_is_the_same_worker_behind_a_profile(services: dict[str, Any]) -> None:
    gpu, cpu = services["worker"], services["worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu
    assert cpu["command"] == [*gpu["command"][:-1], "cpu"]
    assert environment_of(cpu) == environment_of(gpu)
    assert "container_name" not in cpu and "ports" not in cpu


def test_every_service_reads_the_datasets_from_one_volume(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "worker-cpu", "data"):
        data_dir = environment_of(services[name])["TRAINLAB_DATA_DIR"]
        assert volume_targets(services[name])["datasets"] == data_dir, name
    assert services["data"]["profiles"] == ["data"]
    assert "allow_download=True" in " ".join(services["data"]["command"])
    assert environment_of(services["api"])["TRAINLAB_ALLOW_DOWNLOAD"] == "false"
    assert services["api"]["volumes"] == ["datasets:/data:ro"]


def test_data_job_calls_what_the_code_defines(services: dict[str, Any]) -> None:
    # `python -c CODE` only fails when run in the container: check its imports against the
    # source here, so a renamed function is caught without Docker (and without importing torch).
    command = services["data"]["command"]
    assert command[:2] == ["python", "-c"]
    imports = [node for node in ast.walk(ast.parse(command[2])) if isinstance(node, ast.ImportFrom)]
    assert imports
    for node in imports:
        assert node.module
        spec = importlib.util.find_spec(node.module)
        assert spec and spec.origin, node.module
        source = Path(spec.origin).read_text()
        for alias in node.names:
            defined = rf"^(def|class) {alias.name}\b|^{alias.name}\s*[:=]"
            assert re.search(defined, source, re.MULTILINE), f"{node.module}.{alias.name}"


def test_trainlab_services_share_image_and_settings(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    images = {services[name]["image"] for name in (*TRAINLAB_SERVICES, "data")}
    assert images == {"trainlab:local"}
    shared = ("TRAINLAB_DATABASE_URL", "TRAINLAB_BROKER_URL", "TRAINLAB_DATA_DIR")
    settings = {
        name: {k: environment_of(services[name])[k] for k in shared} for name in TRAINLAB_SERVICES
    }
    assert len({tuple(s.values()) for s in settings.values()}) == 1, settings
    database, broker = (
        settings["api"]["TRAINLAB_DATABASE_URL"],
        settings["api"]["TRAINLAB_BROKER_URL"],
    )
    assert database == "postgresql+psycopg://trainlab:s3cret@postgres:5432/trainlab"
    assert broker.startswith("redis://redis:6379/")
    # The host names in the URLs are services of this file.
    assert {"postgres", "redis"} <= set(compose["services"])
    for volume in ("postgres-data", "redis-data", "datasets"):
        assert volume in compose["volumes"]


def test_every_variable_is_documented_in_env_example(compose: dict[str, Any]) -> None:
    documented = read_env_file()
    used = variables_used(compose)
    assert used, "the compose file reads its settings from .env"
    assert used <= set(documented), f"missing from .env.example: {sorted(used - set(documented))}"


def test_no_working_default_password(compose: dict[str, Any]) -> None:
    assert "POSTGRES_PASSWORD" in required_variables(compose)
    assert read_env_file()["POSTGRES_PASSWORD"] == ""
    # A copied .env.example is not enough: compose stops with a message naming the variable.
    with pytest.raises(InterpolationError, match=r"POSTGRES_PASSWORD.*set POSTGRES_PASSWORD"):
        interpolate_tree(compose, read_env_file())


def test_dockerfile_pins_the_torch_of_pyproject() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins: dict[str, str] = {}
    for requirement in pyproject["project"]["optional-dependencies"]["worker"]:
        if requirement.startswith("trainlab["):
            continue  # the extra builds on the server's: only third-party packages are pinned
        pinned = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", requirement)
        assert pinned, f"the worker extra pins exact versions: {requirement!r}"
        pins[pinned[1]] = pinned[2]
    args = Dockerfile.read().args()
    assert args["TORCH_VERSION"] == pins["torch"]
    assert args["TORCHVISION_VERSION"] == pins["torchvision"]


def test_image_is_multi_stage_and_runs_unprivileged() -> None:
    dockerfile = Dockerfile.read()
    assert len(dockerfile.stages) - 1 >= 2, "a build stage and a runtime stage"
    user = dockerfile.final_user()
    assert user is not None, "the runtime stage sets USER"
    assert user.split(":")[0] not in {"root", "0"}
    env = dockerfile.final_env()
    assert env["TRAINLAB_HOST"] == "0.0.0.0"
    assert env["TRAINLAB_DATA_DIR"] == "/data"


def test_secrets_stay_out_of_the_image_and_the_repo() -> None:
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allowlist: everything is excluded, then only the sources are let back in.
    assert ignore[0] == "*"
    assert not any(line.startswith("!.env") for line in ignore)
    assert not any(line in {"!.venv", "!.venv/", "!.trainlab/", "!data/"} for line in ignore)
    assert ".env" in (REPO / ".gitignore").read_text().split()
