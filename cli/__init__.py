"""The `trainlab` command line: the composition root that starts the API, the workers and the
engine (it may import every other package; nothing imports it). Each command group lives in
its own module and registers itself; heavy imports (torch, uvicorn, celery) happen inside the
command that needs them.

The wheel without extras (`pip install trainlab`, the client alone) carries this CLI too, with
none of the server's dependencies. Its client commands (submit, ablate, sweep) work there; a
group whose module needs a missing dependency is still listed, and each of its commands, like
any command that meets a missing dependency as it runs, answers one line naming the extra to
install (exit code 1) instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# The command groups, in `--help` order: module -> {command: the extra it needs}. "" is the
# client alone (`pip install trainlab`). tests/cli/test_main.py checks the names against what
# each module registers.
GROUPS: dict[str, dict[str, str]] = {
    "cli.local": {"train": "worker", "presets": "server"},  # run the engine in this process
    "cli.service": {"serve": "server", "worker": "worker", "migrate": "server"},
    "cli.client": {"submit": "", "ablate": ""},  # talk to a running server
    "cli.sweep": {"sweep": ""},  # a hyperparameter search on a running server
    "cli.maintenance": {"prune": "server"},  # keep the store small
    "cli.backup": {"backup": "server", "restore": "server"},  # the store to a file and back
    "cli.keys": {"keys": "server"},  # API keys, on the server's host
}
# The worker extra's own packages; any other missing third-party module is the server's.
WORKER_MODULES = frozenset({"torch", "torchvision"})
FIRST_PARTY = frozenset({"api", "core", "worker", "cli", "migrations", "trainlab"})
EXIT_MISSING_EXTRA = 1


def missing_extra(exc: ModuleNotFoundError, needs: str) -> str | None:
    """The extra that brings the module `exc` misses, or None when it is none of theirs (one of
    trainlab's own: a broken install, left to raise)."""
    top = (exc.name or "").split(".", 1)[0]
    if not top or top in FIRST_PARTY:
        return None
    return "worker" if top in WORKER_MODULES else needs or "server"


def _say_missing(command: str, exc: ModuleNotFoundError, extra: str) -> int:
    print(
        f"trainlab {command}: needs the {extra} extra (no module named {exc.name!r}): "
        f"pip install 'trainlab[{extra}]'",
        file=sys.stderr,
    )
    return EXIT_MISSING_EXTRA


def _unavailable(commands: Any, group: dict[str, str], exc: ModuleNotFoundError) -> None:
    """List a group that could not be loaded; its commands accept any arguments and answer
    that the extra is missing."""
    for command, needs in group.items():
        extra = missing_extra(exc, needs)
        if extra is None or not needs:
            raise exc  # a client command must load with the client alone
        placeholder = commands.add_parser(
            command, help=f"(needs: pip install 'trainlab[{extra}]')", add_help=False
        )
        placeholder.set_defaults(missing=(exc, extra))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlab", description="Training jobs for ablation studies."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, group in GROUPS.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            _unavailable(commands, group, exc)
            continue
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Known arguments first: an unavailable command takes whatever was meant for the real one.
    args, unknown = parser.parse_known_args(argv)
    missing: tuple[ModuleNotFoundError, str] | None = getattr(args, "missing", None)
    if missing is not None:
        return _say_missing(args.command, *missing)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.handler(args)
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc, _needs(args.command))
        if extra is None:
            raise
        return _say_missing(args.command, exc, extra)
    return code


def _needs(command: str) -> str:
    return next((g[command] for g in GROUPS.values() if command in g), "server")


if __name__ == "__main__":
    sys.exit(main())
