"""A real `trainlab serve` (uvicorn) on the embedded default: a SQLite store and the SQLite
broker in a fresh state directory, no worker (nothing here needs a run to train). For the
tests that must see what a real HTTP server does: the fuzzing, the access log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO, TEST_DATA_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    log: Path
    env: dict[str, str]
    workdir: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A `trainlab` command with the server's settings (same store), e.g. keys create."""
        return subprocess.run(
            [sys.executable, "-m", "cli", *argv],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


@contextmanager
def live_server(workdir: Path, **settings: str) -> Iterator[LiveServer]:
    """`trainlab serve --migrate --no-worker` on a free port; `settings` are TRAINLAB_* values
    (by setting name, e.g. max_stream_s="1")."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLAB_")}
    env.update(
        {
            "TRAINLAB_STATE_DIR": str(workdir / "state"),
            "TRAINLAB_PORT": str(port),
            "TRAINLAB_DATA_DIR": str(TEST_DATA_DIR),
            "TRAINLAB_ALLOW_DOWNLOAD": "false",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
            **{f"TRAINLAB_{name.upper()}": value for name, value in settings.items()},
        }
    )
    log = workdir / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--migrate", "--no-worker"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", log=log, env=env, workdir=workdir)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def _wait_ready(server: LiveServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trainlab serve exited {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"trainlab serve not ready after 60 s:\n{server.log_text()}")
