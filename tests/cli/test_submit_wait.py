"""`trainlab submit --wait` against a real server (uvicorn, SQLite store, no worker): the run
is played through the store as a worker would, and the command notices its end over the
experiment's event stream, polling only when it can't have the stream."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.store import runs
from core.store.models import Status
from core.store.session import make_engine, session_scope
from tests.api.live_server import LiveServer, live_server

PLAY_S = 3.0


def _submit_wait(server: LiveServer, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "submit", "--preset", "seed-adam", "--set", "epochs=1",
         "--set", "train_limit=500", "--set", "test_limit=100", "--wait", *extra],
        cwd=server.workdir, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _play(server: LiveServer, experiment_id: str) -> None:
    """Claim the run, beat a few times over PLAY_S, finish it, as a worker would."""
    engine = make_engine(f"sqlite:///{server.workdir / 'state' / 'trainlab.db'}")
    try:
        with session_scope(engine) as session:
            attempt = runs.claim(session, experiment_id, worker="test", stale_after_s=60)
        assert attempt is not None
        for step in (10, 20, 30):
            time.sleep(PLAY_S / 3)
            with session_scope(engine) as session:
                runs.heartbeat(session, experiment_id, attempt, step=step, total_steps=30)
        with session_scope(engine) as session:
            runs.finish(
                session, experiment_id, attempt, status=Status.succeeded,
                metrics={"test_accuracy": 0.9}, fingerprint={}, step=30,
            )  # fmt: skip
    finally:
        engine.dispose()


def _run(server: LiveServer, *extra: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    process = _submit_wait(server, *extra)
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("submitted "), first + process.stderr.read()
    experiment_id = first.split()[1]
    player = threading.Thread(target=_play, args=(server, experiment_id))
    player.start()
    try:
        out, err = process.communicate(timeout=60)
    finally:
        player.join(timeout=30)
    return experiment_id, subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _gets(server: LiveServer, experiment_id: str) -> int:
    return server.log_text().count(f'"GET /experiments/{experiment_id} HTTP')


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as running:
        yield running


def test_wait_notices_the_end_over_the_event_stream(server: LiveServer) -> None:
    experiment_id, done = _run(server)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout
    log = server.log_text()
    assert f'GET /experiments/{experiment_id}/events HTTP/1.1" 200' in log
    # One read before following the stream and one after its end: no polling while it ran.
    assert _gets(server, experiment_id) <= 3


def test_wait_falls_back_to_polling_when_the_stream_is_refused(tmp_path: Path) -> None:
    with live_server(tmp_path, auth="required", max_event_streams="1") as server:
        issued = server.cli("keys", "create", "--name", "ann", "--role", "member", "--json")
        key = json.loads(issued.stdout)["key"]
        headers = {"Authorization": f"Bearer {key}"}
        other = httpx.post(
            f"{server.base_url}/experiments",
            json={"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 500}},
            headers=headers,
        ).json()["id"]
        # The key's one stream is taken by another client for the whole test.
        holder = httpx.Client(base_url=server.base_url, headers=headers, timeout=60)
        with holder, holder.stream("GET", f"/experiments/{other}/events") as held:
            assert held.status_code == 200
            experiment_id, done = _run(server, "--api-key", key)
        assert done.returncode == 0, done.stderr
        assert "succeeded" in done.stdout
        log = server.log_text()
        assert f'GET /experiments/{experiment_id}/events HTTP/1.1" 429' in log
        assert _gets(server, experiment_id) >= PLAY_S  # polled about once a second
