"""Live stacks, started once per test session and shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_mnist, require_postgres, require_redis
from tests.integration.stack import Stack, start_embedded, start_production


@pytest.fixture(scope="session")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    require_mnist()
    stack = start_production(Path(tmp_path_factory.mktemp("production")))
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_mnist()
    stack = start_embedded(Path(tmp_path_factory.mktemp("embedded")))
    yield stack
    stack.stop()


@pytest.fixture(params=["production", "embedded"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each test that takes `stack` runs against both deployments."""
    found: Stack = request.getfixturevalue(f"{request.param}_stack")
    return found
