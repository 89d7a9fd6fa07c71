"""The previous release's processes, started beside this checkout's for the upgrade drill.

Its packages (api, cli, core, migrations, worker) are taken from git at PREVIOUS_RELEASE into
a folder of the drill's own; its processes run on this checkout's interpreter and installed
libraries, with that folder as their working directory and first on PYTHONPATH. The venv's
editable install of this checkout is a finder placed after the path finder, so the folder's
packages win: `imported_from` shows which files a process with that environment imports.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.stack import Stack
from tests.migrations.previous_release import PREVIOUS_RELEASE

PACKAGES = ("api", "cli", "core", "migrations", "worker")


def previous_release_tree(dest: Path) -> Path:
    """The previous release's packages, extracted under `dest`."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.fail(
            f"the upgrade drill needs the previous release, commit {PREVIOUS_RELEASE}, which "
            f"this checkout's history lacks (a shallow clone? `git fetch --unshallow`): "
            f"{found.stderr.decode(errors='replace').strip()}"
        )
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS_RELEASE, *PACKAGES],
        capture_output=True,
        check=True,
    )
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def previous_release_stack(tree: Path, base_url: str, env: dict[str, str]) -> Stack:
    """A Stack whose processes run the release in `tree` (its logs are written there too).
    Bytecode is written, so that the tree's __pycache__ shows which of its modules ran."""
    old_env = {**env, "PYTHONPATH": str(tree)}
    old_env.pop("PYTHONDONTWRITEBYTECODE", None)
    return Stack(base_url=base_url, env=old_env, workdir=tree)


def imported_from(stack: Stack) -> dict[str, str]:
    """package -> the file a process started as `stack` starts its processes imports it from."""
    probe = (
        "import importlib, json, sys\n"
        f"names = {list(PACKAGES)!r}\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in names}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=stack.workdir,
        env=stack.env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    found: dict[str, str] = json.loads(done.stdout)
    return found
