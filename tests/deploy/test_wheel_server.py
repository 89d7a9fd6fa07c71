"""trainlab installed from its wheel with the `server` and `worker` extras (not editable, no
source tree) migrates and serves: the service's packages and its migrations ship inside the
package, and the `trainlab` command finds them there. The wheel goes into a fresh virtual
environment with --no-deps; the dependencies are then read from the development environment's
site-packages as plain path entries (so the test needs no network), added only after the
install, which would otherwise take the development copy of trainlab for this one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_DATA_DIR, free_port
from tests.deploy.wheels import (
    SERVER_PACKAGES,
    assert_only_trainlab_installed,
    clean_env,
    dev_site_packages,
    make_venv,
    run,
    site_packages,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SERVE_READY_S = 120.0


@dataclass(frozen=True)
class Install:
    python: Path
    trainlab: Path
    site: Path
    added: frozenset[str]  # what the wheel's install added at the top of site-packages


@pytest.fixture(scope="module")
def install(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("server-venv")
    python = make_venv(root / "venv")
    site = site_packages(root / "venv")
    before = {entry.name for entry in site.iterdir()}
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=root,
        env=clean_env())  # fmt: skip
    added = frozenset({entry.name for entry in site.iterdir()} - before)
    (site / "dependencies.pth").write_text("\n".join(dev_site_packages()) + "\n")
    return Install(python, python.with_name("trainlab"), site, added)


def test_the_install_adds_trainlab_alone(install: Install) -> None:
    assert install.added == {"trainlab", "trainlab-0.1.0.dist-info"}
    assert_only_trainlab_installed(install.site)


def test_the_service_imports_from_the_installed_tree(install: Install, tmp_path: Path) -> None:
    """Plain Python finds none of the service's packages (nothing provides them at the top of
    the path); through the launcher every one, and Alembic's scripts, come from
    trainlab/_server in this venv, not from the checkout."""
    absent = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = run(install.python, "-c", absent, *SERVER_PACKAGES, cwd=tmp_path, env=clean_env())
    assert found.strip() == "[]"
    code = (
        "import trainlab._launch as launch; launch.use_server_root()\n"
        "import api.app, cli, core, migrations, worker.tasks\n"
        "from core.store.migrate import alembic_config\n"
        "for module in (api, cli, core, migrations, worker):\n"
        "    print(module.__file__)\n"
        "print(alembic_config().get_main_option('script_location'))\n"
    )
    printed = run(install.python, "-c", code, cwd=tmp_path, env=clean_env()).split()
    server = install.site / "trainlab" / "_server"
    modules = ["api", "cli", "core", "migrations", "worker"]
    assert [Path(p).parent for p in printed[:-1]] == [server / name for name in modules]
    assert Path(printed[-1]) == server / "migrations"


def test_trainlab_migrate_from_a_wheel_install(install: Install, tmp_path: Path) -> None:
    env = {**clean_env(), "TRAINLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    printed = run(install.trainlab, "migrate", cwd=tmp_path, env=env)
    assert "database at head" in printed
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "loss_points", "ablations", "alembic_version"} <= tables


def test_trainlab_serve_from_a_wheel_install(install: Install, tmp_path: Path) -> None:
    """`trainlab serve` from a folder outside the checkout on its embedded SQLite store: it
    answers, serves the dashboard from the package's data, and its embedded worker (started
    as `python -m trainlab worker`) trains a run submitted by `trainlab submit`."""
    port = free_port()
    env = {
        **clean_env(),
        "TRAINLAB_STATE_DIR": str(tmp_path / "state"),
        "TRAINLAB_PORT": str(port),
        "TRAINLAB_DATA_DIR": str(TEST_DATA_DIR),
        "TRAINLAB_ALLOW_DOWNLOAD": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([install.trainlab, "serve"], cwd=tmp_path, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, serve, log)
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        printed = run(install.trainlab, "submit", "--preset", "seed-adam", "--set", "epochs=1",
                      "--set", "train_limit=64", "--set", "test_limit=64", "--wait",
                      cwd=tmp_path, env=env)  # fmt: skip
        assert ": succeeded" in printed, printed
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            code = serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
            raise
    assert code == 128 + signal.SIGINT, log.read_text()
    assert f"{install.python} -m trainlab worker" in log.read_text()


def _wait_healthy(url: str, serve: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVE_READY_S
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"serve did not answer within {SERVE_READY_S} s:\n{log.read_text()}")
