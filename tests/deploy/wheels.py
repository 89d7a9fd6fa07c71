"""This checkout's wheel, built as a clean clone would build it, and fresh virtual environments
to install it into (tests/deploy/test_wheel.py: the client alone; test_wheel_server.py: the
service, with its dependencies taken from the development environment so no network is
needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# What the wheel may put in site-packages: the client package (the service's packages live
# inside it, under trainlab/_server) and its metadata; and the console script.
SERVER_PACKAGES = ("api", "core", "worker", "cli", "migrations")


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel of a copy (in `source`) of the files git knows: a build/ folder left in a
    working tree would otherwise slip stale modules into the wheel."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for name in listed.splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, source, cwd=out,
    )  # fmt: skip
    (found,) = out.glob("trainlab-*.whl")
    return found


def clean_env() -> dict[str, str]:
    """This environment without trainlab's settings and without PYTHONPATH and friends: what
    runs in a fresh venv sees only what is installed there."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRAINLAB_", "PYTHON"))}


def make_venv(path: Path) -> Path:
    """A fresh virtual environment (pip from Python's own bundled copy); its python."""
    run(sys.executable, "-m", "venv", path, cwd=path.parent, env=clean_env())
    return path / "bin" / "python"


def site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def dev_site_packages() -> list[str]:
    """The development environment's site-packages folders (a shared one added by a .pth file
    too), whose packages a fresh venv may borrow as plain path entries: their own .pth files
    (an editable install of this checkout among them) are not processed from there."""
    return [p for p in sys.path if Path(p).name == "site-packages" and Path(p).is_dir()]


def installed_paths(site: Path) -> list[str]:
    """Every file the wheel installed, as its RECORD lists them (relative to site-packages)."""
    (record,) = site.glob("trainlab-*.dist-info/RECORD")
    return [line.split(",", 1)[0] for line in record.read_text().splitlines() if line]


def assert_only_trainlab_installed(site: Path) -> None:
    """Nothing of the wheel at the top of site-packages but trainlab and its dist-info (and
    the `trainlab` script in bin/)."""
    tops = {path.split("/", 1)[0] for path in installed_paths(site) if not path.startswith("..")}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"trainlab"}, tops
    outside = [path for path in installed_paths(site) if path.startswith("..")]
    assert [Path(path).name for path in outside] == ["trainlab"], outside
    for name in SERVER_PACKAGES:
        assert not (site / name).exists(), name
        assert (site / "trainlab" / "_server" / name / "__init__.py").is_file(), name
