"""The `trainlab` command line: the composition root that starts the API, the workers and the
engine (it may import every other package; nothing imports it). Each command group lives in
its own module and registers itself; heavy imports (torch, uvicorn, celery) happen inside the
command that needs them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import backup, client, keys, local, maintenance, service, sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlab", description="Training jobs for ablation studies."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.register(commands)  # train, presets: run the engine in this process
    service.register(commands)  # serve, worker, migrate: run the service
    client.register(commands)  # submit, ablate: talk to a running server
    sweep.register(commands)  # sweep: a hyperparameter search on a running server
    maintenance.register(commands)  # prune: keep the store small
    backup.register(commands)  # backup, restore: the store to a file and back
    keys.register(commands)  # keys create/list/revoke: API keys, on the server's host
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
