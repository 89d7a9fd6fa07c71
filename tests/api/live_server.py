"""Real HTTP servers for the tests that must see what one does (the fuzzing, the access log,
rate limits, the browser): `live_server`, a real `trainlab serve` (uvicorn) on the embedded
default, a SQLite store and the SQLite broker in a fresh state directory, no worker (nothing
here needs a run to train); and `serving`, an app built in the test under uvicorn in a thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from tests.conftest import REPO, TEST_DATA_DIR, free_port


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


@contextmanager
def serving(app: ASGIApp, port: int, graceful_shutdown_s: int | None = None) -> Iterator[str]:
    """`app` under a real uvicorn in a thread on `port`, answering /healthz; yields its base
    URL and stops it on the way out."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer on {url} within 30 s")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
