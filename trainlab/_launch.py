"""The `trainlab` command (and `python -m trainlab`): finds the service's packages, then runs
the CLI (cli.main).

The service's packages (api, core, worker, cli, migrations) import each other by those
top-level names. A wheel does not put such generic names at the top of site-packages, where
they would clash with other distributions' `api` or `core`: it carries them under
trainlab/_server/ (setup.py). So the service's own entry points, and only they, put the folder
that holds them first on sys.path: trainlab/_server in an install from the wheel, the checkout
(the folder holding trainlab/ beside cli/) in a source tree or an editable install. A program
that imports the client (`from trainlab import Client`) never runs this, so `api` and `core`
never appear on its path.

Child processes the service starts (serve's embedded worker) run `python -m trainlab`, which
comes through here again.
"""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_PACKAGES = ("api", "core", "worker", "cli", "migrations")
_PACKAGE = Path(__file__).resolve().parent


def _holds_server(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in SERVER_PACKAGES)


def server_root() -> Path | None:
    """The folder holding api/, core/, worker/, cli/ and migrations/: the wheel's
    trainlab/_server first, else the source tree around this package (a checkout has its
    pyproject.toml there, which tells it from a site-packages that happens to hold a `cli`)."""
    installed = _PACKAGE / "_server"
    if _holds_server(installed):
        return installed
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and _holds_server(checkout):
        return checkout
    return None


def use_server_root() -> Path | None:
    """Put the server's folder first on sys.path (once); None when there is none."""
    root = server_root()
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def main() -> int:
    if use_server_root() is None:
        print(
            f"trainlab: the service's packages are missing next to {_PACKAGE}; reinstall trainlab",
            file=sys.stderr,
        )
        return 1
    # The composition root, loaded from the folder just put on the path: the one import of
    # the CLI from the client package (.ci/check_layering.py allows it here alone).
    from cli import main as cli_main

    return cli_main()
