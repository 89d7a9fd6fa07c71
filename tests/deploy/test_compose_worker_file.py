"""docker-compose.worker.yml: the main file's GPU worker, alone, for more GPU hosts, pointed at
the main host's PostgreSQL and Redis by two required settings (README, "More GPU hosts")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.composefile import (
    WORKER_COMPOSE_FILE,
    WORKER_ENV_EXAMPLE,
    InterpolationError,
    environment_of,
    interpolate_tree,
    load_yaml,
    read_env_file,
    required_variables,
    variables_used,
)

URLS = {
    "TRAINLAB_DATABASE_URL": "postgresql+psycopg://trainlab:s3cret@10.0.0.5:5432/trainlab",
    "TRAINLAB_BROKER_URL": "redis://10.0.0.5:6379/0",
}


@pytest.fixture(scope="module")
def worker_file() -> dict[str, Any]:
    return load_yaml(WORKER_COMPOSE_FILE)


@pytest.fixture(scope="module")
def resolved(worker_file: dict[str, Any]) -> dict[str, Any]:
    env = {**read_env_file(WORKER_ENV_EXAMPLE), **URLS}
    services: dict[str, Any] = interpolate_tree(worker_file, env)["services"]
    return services


@pytest.fixture(scope="module")
def main_worker() -> dict[str, Any]:
    env = {**read_env_file(), "POSTGRES_PASSWORD": "s3cret"}
    worker: dict[str, Any] = interpolate_tree(load_yaml(), env)["services"]["worker"]
    return worker


def test_it_runs_the_main_files_gpu_worker_alone(
    resolved: dict[str, Any], main_worker: dict[str, Any]
) -> None:
    assert set(resolved) == {"worker"}, "no database, broker, API or migrations of its own"
    worker = resolved["worker"]
    for same in ("image", "command", "deploy", "stop_grace_period", "restart"):
        assert worker[same] == main_worker[same], same
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert (device["driver"], device["count"], device["capabilities"]) == ("nvidia", 1, ["gpu"])
    # `--scale worker=N` replicas must not clash; nothing here to wait for.
    assert not {"container_name", "ports", "depends_on", "profiles"} & set(worker)


def test_it_reaches_the_main_hosts_database_and_broker(
    resolved: dict[str, Any], main_worker: dict[str, Any]
) -> None:
    environment = environment_of(resolved["worker"])
    for name, url in URLS.items():
        assert environment[name] == url
    main = environment_of(main_worker)
    assert set(environment) == set(main)
    assert environment["TRAINLAB_DATA_DIR"] == main["TRAINLAB_DATA_DIR"]


def test_the_urls_are_required_and_documented(worker_file: dict[str, Any]) -> None:
    documented = read_env_file(WORKER_ENV_EXAMPLE)
    assert variables_used(worker_file) <= set(documented)
    assert required_variables(worker_file) == set(URLS)
    assert all(documented[name] == "" for name in URLS), "no working default to forget"
    with pytest.raises(InterpolationError, match="TRAINLAB_DATABASE_URL"):
        interpolate_tree(worker_file, documented)
