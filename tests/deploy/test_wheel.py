"""The wheel: what it carries, and `pip install trainlab` without extras as the Python client
alone. It puts nothing at the top of site-packages but `trainlab` (the service's packages ride
inside it, under trainlab/_server); its install has none of the server's stack and no `api` or
`core` on the path; the README's notebook example and the CLI's client commands run from it
against a live server, and the server's commands say which extra they need.
(test_wheel_server.py installs it with the server's dependencies and serves.)"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from api.app import create_app
from core.presets import BOOK_CHAIN, build_spec
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.conftest import REPO, free_port, make_settings
from tests.deploy.wheels import (
    SERVER_PACKAGES,
    assert_only_trainlab_installed,
    clean_env,
    make_venv,
    run,
    site_packages,
)

pytestmark = pytest.mark.slow


def test_the_wheel_holds_trainlab_alone_with_the_server_inside(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/", 1)[0] for n in names} == {"trainlab", "trainlab-0.1.0.dist-info"}
    server = "trainlab/_server/"
    assert {f"{server}migrations/env.py", f"{server}migrations/script.py.mako"} <= names
    assert any(n.startswith(f"{server}migrations/versions/0001_") for n in names)
    assert f"{server}api/static/index.html" in names
    # Every module of the checkout's server packages, each in its place.
    for package in SERVER_PACKAGES:
        for module in (REPO / package).rglob("*.py"):
            assert server + module.relative_to(REPO).as_posix() in names, module
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
    entry_points = zipfile.ZipFile(wheel).read("trainlab-0.1.0.dist-info/entry_points.txt")
    assert "trainlab = trainlab._launch:main" in entry_points.decode()


def test_the_image_build_context_lets_the_packaging_in() -> None:
    """The Dockerfile installs `/src[server,worker]` from an allowlisted context: everything
    the wheel is built from must be let in."""
    allowed = (REPO / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "trainlab/"):
        assert f"!{needed}" in allowed, needed
    for package in SERVER_PACKAGES:
        assert f"!{package}/" in allowed, package


def _readme_python() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python") :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_wheel_without_extras_is_the_client_alone(wheel: Path, tmp_path: Path) -> None:
    """`pip install trainlab`: httpx and pydantic, none of the server's stack; and the README's
    notebook example and `trainlab ablate` run from that install against a live server (its
    runs recorded, so the book's ablation reuses them and nothing trains)."""
    env = clean_env()
    python = make_venv(tmp_path / "client-venv")
    trainlab = python.with_name("trainlab")
    run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    assert_only_trainlab_installed(site_packages(tmp_path / "client-venv"))
    absent = "import importlib.util as u; print([m for m in {} if u.find_spec(m)])"
    heavy = ["torch", "fastapi", "sqlalchemy", "celery", "numpy", "uvicorn", "tqdm"]
    # Nor the service's own packages: a client process never has `api` or `core` to import.
    ours = list(SERVER_PACKAGES)
    assert run(python, "-c", absent.format(heavy + ours), cwd=tmp_path, env=env).strip() == "[]"
    # The CLI: its help, and each server command's one line naming the extra it needs.
    assert "submit" in run(trainlab, "--help", cwd=tmp_path, env=env)
    for argv, extra in ((["serve"], "server"), (["keys", "list"], "server"),
                        (["train", "--preset", "seed-adam"], "worker")):  # fmt: skip
        done = _fails(trainlab, *argv, cwd=tmp_path, env=env)
        assert done.endswith(f"pip install 'trainlab[{extra}]'") and "\n" not in done, done
    # The example's frames and figure need the pandas and plot extras' packages (and numpy,
    # pandas' own), none of the server's.
    run(python, "-m", "pip", "install", "-q", "pandas", "matplotlib", cwd=tmp_path, env=env)
    server = [m for m in heavy if m != "numpy"] + ours
    assert run(python, "-c", absent.format(server), cwd=tmp_path, env=env).strip() == "[]"
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
        printed = run(python, script, cwd=tmp_path, env=env)
        # The same study from the command line, which finds the server as the client does.
        table = run(trainlab, "ablate", "--design", "book", "--seeds", "5", "--set", "epochs=1",
                    "--compare", "successive", "--wait", cwd=tmp_path, env=env)  # fmt: skip
    engine.dispose()
    assert printed.strip().splitlines()[-1].startswith("(5, ")
    assert table.splitlines()[0].startswith("ablation ") and "5 arms, 25 experiments" in table
    assert all(preset in table for preset in BOOK_CHAIN), table


def _fails(*argv: str | Path, cwd: Path, env: dict[str, str]) -> str:
    """A command's one line on stderr, where it must fail with exit code 1 and no output."""
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and not done.stdout, (argv, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip()
