"""The image installs `pip install '.[server,worker]'` into a clean environment, with none of
the dev tools that happen to bring extra packages into .venv. A module that the production path
imports but that only a dev tool pulls in works in every test and fails in the container. These
tests walk the declared requirements, as pip would resolve them, to catch that without Docker."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def declared_closure(extras: frozenset[str]) -> set[str]:
    """Every distribution `pip install '.[extras]'` installs: pyproject.toml's requirements
    (read from the file, so an edit counts before reinstalling), then the installed
    distributions' own metadata, extras included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    roots = list(project["dependencies"])
    for extra in extras:
        roots += project["optional-dependencies"][extra]
    # This project's own extras (`trainlab[server]`) from the file too, not the installed copy.
    while own := [r for r in roots if canonicalize_name(Requirement(r).name) == project["name"]]:
        for raw in own:
            roots.remove(raw)
            for extra in Requirement(raw).extras:
                roots += project["optional-dependencies"][extra]
    pending = [(Requirement(raw), frozenset[str]()) for raw in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while pending:
        requirement, parent_extras = pending.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here (another platform's dependency): nothing to walk
        pending += [(Requirement(raw), key[1]) for raw in requires]
    return names


def _extra_requirements(package: str, extra: str) -> set[str]:
    """What `package[extra]` adds to a plain `package`."""
    found: set[str] = set()
    for raw in distribution(package).requires or []:
        requirement = Requirement(raw)
        marker = requirement.marker
        if marker and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
            found.add(canonicalize_name(requirement.name))
    return found


def test_walk_sees_the_worker_extra() -> None:
    installed = declared_closure(frozenset({"worker"}))  # worker brings the server extra
    assert {"torch", "torchvision", "celery", "kombu", "fastapi"} <= installed
    assert "pytest" not in installed  # the dev extra stays out of the image


def test_the_client_alone_brings_no_server_stack() -> None:
    installed = declared_closure(frozenset())
    assert {"httpx", "pydantic"} <= installed
    assert not installed & {"torch", "fastapi", "sqlalchemy", "celery", "numpy", "uvicorn"}


def test_image_install_brings_what_the_redis_broker_needs() -> None:
    # docker-compose.yml runs the workers on Redis. kombu's Redis transport imports modules
    # (`redis`, `packaging`) that kombu declares only under its `redis` extra.
    needed = _extra_requirements("kombu", "redis")
    assert needed, "kombu declares a redis extra"
    missing = needed - declared_closure(frozenset({"server", "worker"}))
    assert not missing, (
        f"`pip install '.[server,worker]'` lacks {sorted(missing)}: the worker fails to start on "
        "Redis in the image. Depend on kombu[redis] (or celery[redis]) in pyproject.toml."
    )


def test_image_install_brings_the_postgres_driver() -> None:
    # TRAINLAB_DATABASE_URL in docker-compose.yml is postgresql+psycopg://: psycopg 3 and a
    # libpq it can load without system packages (the slim base image has none).
    installed = declared_closure(frozenset({"worker"}))
    assert {"psycopg", "psycopg-binary"} <= installed
