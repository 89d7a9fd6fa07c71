"""The `trainlab` command's launcher (trainlab/_launch.py): where it finds the service's
packages. The module itself is run from folders laid out as an installed wheel, a checkout and
a site-packages that only happens to hold a `cli`; tests/deploy/test_wheel.py runs it from
real installs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO

SERVER = ("api", "core", "worker", "cli", "migrations")


def _launcher_in(folder: Path) -> ModuleType:
    """trainlab/_launch.py, copied into `folder`/trainlab and loaded from there."""
    package = folder / "trainlab"
    package.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "trainlab" / "_launch.py", package / "_launch.py")
    spec = importlib.util.spec_from_file_location("launch_copy", package / "_launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _server_folders(root: Path) -> None:
    for name in SERVER:
        (root / name).mkdir(parents=True)


def test_an_installed_wheel_uses_trainlab_server(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _server_folders(site / "trainlab" / "_server")
    assert _launcher_in(site).server_root() == site / "trainlab" / "_server"


def test_a_checkout_uses_the_folder_around_the_package(tmp_path: Path) -> None:
    _server_folders(tmp_path)
    (tmp_path / "pyproject.toml").touch()
    assert _launcher_in(tmp_path).server_root() == tmp_path
    # The real checkout, as an editable install sees it.
    from trainlab import _launch

    assert _launch.server_root() == REPO


def test_stray_top_level_folders_are_not_a_server(tmp_path: Path) -> None:
    """A site-packages holding folders of those names (another distribution's `api`, an old
    install's) but no trainlab/_server: no server, rather than someone else's code."""
    _server_folders(tmp_path)
    launcher = _launcher_in(tmp_path)
    assert launcher.server_root() is None
    assert launcher.use_server_root() is None


def test_python_m_trainlab_runs_the_cli_from_elsewhere(tmp_path: Path) -> None:
    """From a folder outside the checkout, with only the package findable (as an editable
    install finds it) and no `cli` on the path: the launcher puts the checkout there itself,
    as it does for serve's embedded worker (`python -m trainlab worker`)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "trainlab").symlink_to(REPO / "trainlab", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINLAB_", "PYTHON"))}
    code = (
        "import importlib.util, runpy, sys\n"
        "sys.path.insert(0, sys.argv.pop(1))\n"
        "assert importlib.util.find_spec('cli') is None, 'cli on the path before the launcher'\n"
        "runpy.run_module('trainlab', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(site), "presets", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert '"seed-adam"' in done.stdout
