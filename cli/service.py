"""`trainlab serve`, `trainlab worker`, `trainlab migrate`: run the service.

Flags that mirror a setting are applied by setting the TRAINLAB_* variable and re-reading the
settings, so a flag and its variable mean exactly the same thing, also in child processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from core.settings import get_settings

logger = logging.getLogger("trainlab")


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="Serve the API (and, by default, a worker).")
    serve.add_argument("--host", help="Bind address (TRAINLAB_HOST).")
    serve.add_argument("--port", type=int, help="Port (TRAINLAB_PORT).")
    serve.add_argument(
        "--migrate", action="store_true", help="Upgrade the database schema before serving."
    )
    worker_flag = serve.add_mutually_exclusive_group()
    worker_flag.add_argument(
        "--with-worker", dest="embedded_worker", action="store_const", const="true"
    )
    worker_flag.add_argument(
        "--no-worker", dest="embedded_worker", action="store_const", const="false"
    )
    serve.set_defaults(handler=serve_command)

    worker = commands.add_parser("worker", help="Run a training worker.")
    worker.add_argument(
        "--concurrency", type=int, help="Runs at once (TRAINLAB_WORKER_CONCURRENCY)."
    )
    worker.add_argument("--device", choices=["auto", "cpu", "cuda"], help="TRAINLAB_DEVICE.")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=worker_command)

    migrate = commands.add_parser("migrate", help="Upgrade the database schema to the latest.")
    migrate.set_defaults(handler=migrate_command)


def _override(**values: object) -> None:
    for key, value in values.items():
        if value is not None:
            os.environ[f"TRAINLAB_{key.upper()}"] = str(value)
    get_settings.cache_clear()


def _configure_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def migrate_command(_: argparse.Namespace) -> int:
    from core.store.migrate import upgrade_to_head

    settings = get_settings()
    _configure_logging()
    upgrade_to_head(settings.effective_database_url)
    print(f"database at head: {_redacted(settings.effective_database_url)}")
    return 0


def worker_command(args: argparse.Namespace) -> int:
    _override(worker_concurrency=args.concurrency, device=args.device)
    settings = get_settings()
    from core.broker import TRAINING_QUEUE
    from worker.celery_app import celery_app

    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={TRAINING_QUEUE}",
    ]
    if settings.broker_is_sqlalchemy:
        # The SQLAlchemy transport has no fan-out, which these cluster features need.
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    celery_app.worker_main(argv=argv)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    _override(host=args.host, port=args.port, embedded_worker=args.embedded_worker)
    settings = get_settings()
    _configure_logging()
    if args.migrate:
        migrate_command(args)
    import uvicorn

    from api.app import create_app

    supervisor = _EmbeddedWorker() if settings.run_embedded_worker else None
    if supervisor:
        supervisor.start()
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
        )
    finally:
        if supervisor:
            supervisor.stop()
    return 0


class _EmbeddedWorker:
    """`trainlab worker` as a child of `trainlab serve`, restarted if it dies, so the
    embedded default runs the very same task code path as a production worker."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="embedded-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "cli", "worker"]
        logger.info("starting the embedded worker: %s", " ".join(command))
        # Same process group as `serve`: Ctrl+C, or a signal to the group, reaches both.
        return subprocess.Popen(command)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._process = self._spawn()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            logger.warning("embedded worker exited with %s; restarting in 2 s", code)
            time.sleep(2)

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process and process.poll() is None:
            # Cold shutdown: a warm one would wait for a run of up to hours to finish. The run
            # is left `running`; the reaper requeues it from its checkpoint on the next start.
            os.kill(process.pid, signal.SIGQUIT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self._thread.join(timeout=5)


def _redacted(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
