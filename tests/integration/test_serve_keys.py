"""`trainlab serve` on an address others can reach requires API keys, and refuses to start
before any key exists, saying how to make the first one; once one exists it serves, and says
so in /readyz."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.stack import FAST_SETTINGS, TRAINLAB, Stack, clean_env

pytestmark = pytest.mark.integration


def test_a_public_server_without_keys_refuses_then_serves_once_one_exists(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = clean_env(
        {
            **FAST_SETTINGS,
            "TRAINLAB_HOST": "0.0.0.0",
            "TRAINLAB_PORT": str(port),
            "TRAINLAB_STATE_DIR": str(tmp_path / "state"),
        }
    )
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=env, workdir=tmp_path)
    serve = [*TRAINLAB, "serve", "--no-worker"]
    refused = subprocess.run(serve, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert refused.returncode == 3, refused.stderr
    assert "none exists yet" in refused.stderr
    assert "trainlab keys create --name admin --role admin" in refused.stderr

    made = subprocess.run(
        [*TRAINLAB, "keys", "create", "--name", "admin", "--role", "admin", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = json.loads(made.stdout)["key"]
    stack.api = stack.spawn_with(["serve", "--no-worker"], "serve", {})
    try:
        stack.wait_ready()
        assert httpx.get(f"{stack.base_url}/readyz").json()["auth"] == "required"
        assert httpx.get(f"{stack.base_url}/experiments").status_code == 401
        signed = httpx.get(
            f"{stack.base_url}/experiments", headers={"Authorization": f"Bearer {key}"}
        )
        assert signed.status_code == 200
    finally:
        stack.stop()
