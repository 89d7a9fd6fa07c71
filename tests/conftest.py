"""Shared test setup: where MNIST is, and the real services some tests need.

A test that needs PostgreSQL or Redis fails in CI (CI=true) when the service is down, so a
broken CI machine can't pass by skipping; on a developer's machine it skips with the reason.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent
# Tests never download: they read the MNIST files laid out beside the checkout.
TEST_DATA_DIR = Path(os.environ.get("TEST_DATA_DIR", REPO.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Test stacks lease databases 1..15 of the same server (see lease_redis_database).


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _require(what: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{what} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it (see .ci/run)")
    pytest.skip(message)


def require_postgres() -> None:
    _require("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    _require("Redis", "127.0.0.1", 6379)


def require_mnist() -> Path:
    if not (TEST_DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        message = f"MNIST files not found under {TEST_DATA_DIR}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return TEST_DATA_DIR


def lease_redis_database() -> str:
    """A Redis database number no other live test stack on this machine uses: two stacks
    sharing a broker would take each other's messages."""
    base = REDIS_URL.rsplit("/", 1)[0]
    leases = redis.Redis.from_url(f"{base}/0")
    for number in range(1, 16):
        if leases.set(f"trainlab:test-lease:{number}", os.getpid(), nx=True, ex=3600):
            return f"{base}/{number}"
    raise RuntimeError("all Redis databases 1..15 are leased by other test stacks")


def release_redis_database(url: str) -> None:
    base, number = url.rsplit("/", 1)
    redis.Redis.from_url(f"{base}/0").delete(f"trainlab:test-lease:{number}")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return require_mnist()


@pytest.fixture
def clean_settings_cache() -> Iterator[None]:
    """Tests that change TRAINLAB_* variables clear the cached settings before and after."""
    from core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
