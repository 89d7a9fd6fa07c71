"""trainlab installed from its wheel (not editable, no source tree) migrates a database: the
migrations ship inside the package. The wheel is built from this checkout and installed into a
fresh virtual environment whose only other packages are the dependencies, read from the
development environment's site-packages (so the test needs no network)."""

from __future__ import annotations

import os
import shutil
import site
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from api.app import create_app
from core.presets import BOOK_CHAIN, build_spec
from core.store.session import make_engine
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.conftest import REPO, make_settings, upgrade_to_head
from tests.integration.stack import free_port

pytestmark = pytest.mark.slow


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the files git knows, as a clean clone would be: a build/ folder
    # left in a working tree would otherwise slip stale modules into the wheel.
    source = tmp_path_factory.mktemp("source")
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for name in listed.splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, source, cwd=out,
    )  # fmt: skip
    (found,) = out.glob("trainlab-*.whl")
    return found


def test_the_wheel_carries_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "migrations/env.py" in names and "migrations/script.py.mako" in names
    assert any(n.startswith("migrations/versions/0001_") for n in names)
    assert "api/static/index.html" in names
    assert not any(n.startswith("tests/") for n in names)


def test_trainlab_migrate_from_a_wheel_install(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    (fresh,) = (venv / "lib").glob("python3*/site-packages")
    # The dependencies, as a plain path entry: the development environment's .pth files (its
    # editable install of this checkout) are not processed from there.
    (fresh / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", fresh, wheel,
         cwd=tmp_path)  # fmt: skip
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINLAB_", "PYTHON"))}
    env["TRAINLAB_DATABASE_URL"] = f"sqlite:///{workdir / 'fresh.db'}"
    python = venv / "bin" / "python"
    where = _run(python, "-c", "import core, migrations; print(core.__file__, migrations.__file__)",
                 cwd=workdir, env=env)  # fmt: skip
    assert str(REPO) not in where and str(fresh) in where, where
    printed = _run(python, "-m", "cli", "migrate", cwd=workdir, env=env)
    assert "database at head" in printed
    with sqlite3.connect(workdir / "fresh.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "loss_points", "ablations", "alembic_version"} <= tables


def _readme_python() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_wheel_without_extras_is_the_client_alone(wheel: Path, tmp_path: Path) -> None:
    """`pip install trainlab`: httpx and pydantic, none of the server's stack; and the README's
    notebook example runs from that install against a live server (its runs recorded, so the
    book's ablation reuses them and nothing trains)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINLAB_", "PYTHON"))}
    venv = tmp_path / "client-venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    absent = "import importlib.util as u; print([m for m in {} if u.find_spec(m)])"
    heavy = ["torch", "fastapi", "sqlalchemy", "celery", "numpy", "uvicorn"]
    assert _run(python, "-c", absent.format(heavy), cwd=tmp_path, env=env).strip() == "[]"
    # The example's frames and figure need the pandas and plot extras' packages (and numpy,
    # pandas' own), none of the server's.
    _run(python, "-m", "pip", "install", "-q", "pandas", "matplotlib", cwd=tmp_path, env=env)
    server = [m for m in heavy if m != "numpy"]
    assert _run(python, "-c", absent.format(server), cwd=tmp_path, env=env).strip() == "[]"
    # A SQLite store of its own (the session's database fixtures would run this twice).
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(database_url)
    engine = make_engine(database_url)
    runs = RecordedRuns(engine)
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in range(5):
            spec = build_spec(preset, {"epochs": 1, "seed": seed})
            runs.finished_run(spec, accuracy=0.8 + 0.02 * arm + 0.003 * seed, final_loss=0.3)
    script = tmp_path / "example.py"
    script.write_text(_readme_python() + "print(summary.to_pandas().shape)\n")
    env["MPLBACKEND"] = "Agg"
    settings = make_settings(
        database_url=database_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        state_dir=tmp_path / "state",
        trusted_hosts=["127.0.0.1"],
    )
    app = create_app(settings, lifespan_hooks=[])
    with serving(app, free_port()) as url:
        env["TRAINLAB_URL"] = url
        printed = _run(python, script, cwd=tmp_path, env=env)
    engine.dispose()
    assert printed.strip().splitlines()[-1].startswith("(5, ")
