"""A real `trainlab serve` on a built store, for the scale benchmark's reads.

`serve --no-worker` (nothing may train the store's queued runs) on the store's URL, with a
broker of its kind: a Redis database of the shared server for PostgreSQL (as deployed), the
embedded SQLite broker for SQLite (as `make run`). Every setting at its default but these:
- the per-key request rate is raised: the benchmark reads back to back, far past 600/minute;
- the reaper's timeouts are a day: the store's in-flight runs have no worker, and a reaper
  that requeued them would change the store under the reads (it still runs its passes, and
  so does the retention pass, at their usual intervals).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, free_port, lease_redis_database, release_redis_database
from tests.integration.stack import BASE_SETTINGS, Stack, clean_env

SERVER_SETTINGS = {
    **BASE_SETTINGS,
    "TRAINLAB_RATE_LIMIT_KEY": "1000000/minute",
    "TRAINLAB_HEARTBEAT_TIMEOUT_S": "86400",
    "TRAINLAB_RESEND_LOST_AFTER_S": "86400",
}


def start_server(database_url: str, workdir: Path) -> Stack:
    """`trainlab serve --no-worker` on `database_url`, ready; stop() ends it."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {
        **SERVER_SETTINGS,
        "TRAINLAB_DATABASE_URL": database_url,
        "TRAINLAB_PORT": str(port),
        "TRAINLAB_STATE_DIR": str(workdir / "state"),
        # This checkout's code, whatever the environment has installed.
        "PYTHONPATH": str(REPO),
    }
    cleanups = []
    if database_url.startswith("postgresql"):
        redis_url = lease_redis_database()
        settings["TRAINLAB_BROKER_URL"] = redis_url
        cleanups.append(lambda: release_redis_database(redis_url))
    stack = Stack(base_url=f"http://127.0.0.1:{port}", env=clean_env(settings), workdir=workdir)
    stack.cleanups.extend(cleanups)
    try:
        api = stack.start_api()
        stack.wait_ready(timeout=180)
        if api.poll() is not None:  # whatever answered on the port, it was not this server
            raise RuntimeError(f"trainlab serve exited with {api.returncode}\n{stack.logs()}")
    except BaseException:
        stack.stop()
        raise
    return stack
