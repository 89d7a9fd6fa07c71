"""`trainlab serve`, `trainlab worker`, `trainlab migrate`: run the service.

Flags that mirror a setting are applied by setting the TRAINLAB_* variable and re-reading the
settings, so a flag and its variable mean exactly the same thing, also in child processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from core.settings import Settings, get_settings

logger = logging.getLogger("trainlab")

# `serve` refused to start: the configured database's schema is not the one this version needs.
EXIT_SCHEMA = 2
# Refused to start: keys are required on a public address and none exists yet.
EXIT_NO_KEYS = 3


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="Serve the API (and, by default, a worker).")
    serve.add_argument("--host", help="Bind address (TRAINLAB_HOST).")
    serve.add_argument("--port", type=int, help="Port (TRAINLAB_PORT).")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="Upgrade the configured database schema before serving (the embedded SQLite "
        "store is always brought up to date).",
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
    # Set by `trainlab serve` for its embedded worker: stop when that process dies.
    worker.add_argument("--exit-with-parent", type=int, help=argparse.SUPPRESS)
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
    if args.exit_with_parent:
        from worker.shutdown import exit_with_parent

        exit_with_parent(args.exit_with_parent)
    from core.broker import TRAINING_QUEUE
    from worker.celery_app import celery_app

    argv = [
        "worker",
        f"--loglevel={args.loglevel}",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={TRAINING_QUEUE}",
    ]
    # Gossip, mingle and worker heartbeats serve Celery's own events and elections, which
    # nothing here uses (the store keeps each run's heartbeat); the SQLAlchemy transport can't
    # carry them at all, and on Redis gossip failed with a traceback at every reconnect.
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    celery_app.worker_main(argv=argv)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    _override(host=args.host, port=args.port, embedded_worker=args.embedded_worker)
    settings = get_settings()
    _configure_logging()
    problem = _prepare_schema(settings, migrate=args.migrate)
    if problem:
        print(f"trainlab: error: {problem}", file=sys.stderr)
        return EXIT_SCHEMA
    problem = _check_keys(settings)
    if problem:
        print(f"trainlab: error: {problem}", file=sys.stderr)
        return EXIT_NO_KEYS
    from api.app import create_app
    from cli.supervision import serve_app

    return serve_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        grace_s=settings.shutdown_grace_s,
        embedded_worker=settings.run_embedded_worker,
        **http_options(settings),
    )


def http_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the request's edges. h11, not httptools (uvicorn's pick when it
    is installed): httptools buffers a header however long it grows, so two connections
    sending an endless header took hundreds of megabytes; h11 refuses the request once its
    line and headers pass the bound while still arriving. Forwarded headers are believed only
    from the configured proxies: uvicorn's default trusts them from 127.0.0.1, which let any
    local process pick the address it is counted as."""
    proxies = list(settings.trusted_proxies)
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or [],
    }


def _check_keys(settings: Settings) -> str | None:
    """A server others can reach, with keys required, must have a key to accept: starting
    without any would only answer 401 to everyone, so it refuses and says how to make one. On
    loopback it starts (an operator can add keys while it runs)."""
    from core.settings import is_loopback
    from core.store import keys
    from core.store.faults import describe
    from core.store.session import make_engine, session_scope

    if not settings.auth_required or is_loopback(settings.host):
        return None
    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(engine) as session:
            if keys.has_active_keys(session):
                return None
    except Exception as exc:  # a database that isn't up yet: /readyz says so until it is
        logger.warning("could not look for API keys at start: %s", describe(exc))
        return None
    finally:
        engine.dispose()
    return (
        f"this server listens on {settings.host} and requires API keys, but none exists yet: "
        "create the first admin key with `trainlab keys create --name admin --role admin` "
        "(in compose: `docker compose run --rm migrate trainlab keys create --name admin "
        "--role admin`), then start again"
    )


def _prepare_schema(settings: Settings, *, migrate: bool) -> str | None:
    """Bring the store to the schema this version needs, or say why serve must not start.

    The embedded default (no TRAINLAB_DATABASE_URL) is this process's own SQLite file, so serve
    migrates it itself. A configured database is the operator's: serve upgrades it only when
    asked (`--migrate`), and refuses to start on a schema it doesn't match rather than answer
    every request with 503. A database that doesn't answer yet is no reason to refuse (it may
    come up after the API): /readyz says so until it does."""
    from core.store.faults import describe
    from core.store.migrate import schema_state, upgrade_to_head
    from core.store.session import make_engine

    url = settings.effective_database_url
    if migrate or not settings.database_url:
        upgrade_to_head(url)
        logger.info("database at head: %s", _redacted(url))
        return None
    engine = make_engine(url)
    try:
        state = schema_state(engine)
    except Exception as exc:
        logger.warning("database unreachable at start: %s", describe(exc))
        return None
    finally:
        engine.dispose()
    if state.problem is None:
        return None
    return f"{state.problem} (or start with `trainlab serve --migrate`)"


def _redacted(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
