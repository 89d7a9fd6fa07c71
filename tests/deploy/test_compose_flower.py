"""The optional Flower service: behind its own profile (plain `docker compose up` does not start
it), on the workers' broker, published on loopback only (it has no authentication)."""

from __future__ import annotations

from typing import Any

from tests.deploy.composefile import environment_of, interpolate_tree, load_yaml, read_env_file


def test_flower_is_optional_on_the_workers_broker_and_loopback_only() -> None:
    env = {**read_env_file(), "POSTGRES_PASSWORD": "s3cret"}
    services: dict[str, Any] = interpolate_tree(load_yaml(), env)["services"]
    flower = services["flower"]
    assert flower["profiles"] == ["flower"]
    broker = environment_of(services["worker"])["TRAINLAB_BROKER_URL"]
    assert f"--broker={broker}" in flower["command"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"
