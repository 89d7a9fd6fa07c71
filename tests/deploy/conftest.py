"""The wheel of this checkout, built once for the wheel tests (tests/deploy/wheels.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.wheels import build_wheel


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel"))
