"""Where the wheel puts trainlab's packages (the metadata is pyproject.toml's).

Only `trainlab` lands at the top of site-packages. The service's packages keep their folders
in the source tree (api/, core/, worker/, cli/, migrations/) and their code imports them by
those names (`from core.settings import ...`), but in the wheel they live under
trainlab/_server/: names as generic as `api` and `core` at the top of site-packages would
clash with any other distribution's. trainlab/_launch.py, the `trainlab` command, puts that
folder on sys.path before it imports the CLI (docs/architecture.md, "Installed layout").

The subpackages are found here, not listed: a folder added under one of these packages ships
without anyone editing the packaging (a listed set would leave it out silently).
"""

from __future__ import annotations

from setuptools import find_namespace_packages, setup

SERVER_ROOT = "trainlab._server"
SERVER_PACKAGES = ("api", "core", "worker", "cli", "migrations")


def server_packages() -> list[str]:
    """Every package under the server's folders (namespace ones too: migrations/versions and
    api/static have no __init__.py), renamed into trainlab._server."""
    found = find_namespace_packages(
        include=[pattern for name in SERVER_PACKAGES for pattern in (name, f"{name}.*")],
        exclude=["*.__pycache__"],
    )
    return [f"{SERVER_ROOT}.{name}" for name in found]


setup(
    packages=["trainlab", *server_packages()],
    package_dir={f"{SERVER_ROOT}.{name}": name for name in SERVER_PACKAGES},
    package_data={
        "trainlab": ["py.typed"],
        f"{SERVER_ROOT}.api": ["static/**/*", "py.typed"],
        f"{SERVER_ROOT}.core": ["py.typed"],
        f"{SERVER_ROOT}.worker": ["py.typed"],
        f"{SERVER_ROOT}.cli": ["py.typed"],
        # Alembic's script template; the migration scripts themselves are modules.
        f"{SERVER_ROOT}.migrations": ["script.py.mako"],
    },
)
