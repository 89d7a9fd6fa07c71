"""Every third-party module the shipped packages import is a declared dependency.

A module that only happens to be installed (a test tool's dependency, a leftover in a
developer's venv) passes every local check and then breaks a clean install: the rate limiter
once imported `limits` without pyproject naming it. The client (trainlab) must run on the base
dependencies alone (httpx, pydantic); the API, core and migrations on the `server` extra; only
the worker and the CLI may use the `worker` extra (torch).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"core", "api", "worker", "cli", "migrations", "trainlab"}
# What each package may import beyond the base dependencies (httpx and pydantic: the client).
# trainlab's pandas and matplotlib imports are lazy, for their extras.
EXTRAS_ALLOWED = {
    "core": ("server",),
    "api": ("server",),
    "migrations": ("server",),
    "worker": ("server", "worker"),
    "cli": ("server", "worker"),
    "trainlab": ("pandas", "plot"),
}


def requirement_names(requirements: list[str]) -> set[str]:
    """The distributions named, with this project's own extras (`trainlab[server]`) expanded."""
    names: set[str] = set()
    for item in requirements:
        name = normalize(re.split(r"[\s<>=!~\[;]", item, maxsplit=1)[0])
        if name == normalize(PROJECT["name"]):
            extras = re.search(r"\[([^\]]*)\]", item)
            for extra in extras.group(1).split(",") if extras else []:
                names |= requirement_names(PROJECT["optional-dependencies"][extra.strip()])
        else:
            names.add(name)
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(root: Path) -> dict[str, str]:
    """Top-level module -> a file that imports it, for every import under `root`."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(root.parent)))
    return found


@functools.cache
def installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    return {normalize(d) for d in installed().get(module, [])}


def undeclared_imports(root: Path, declared: set[str]) -> list[str]:
    undeclared = []
    for module, where in imported_modules(root).items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        providers = distributions_of(module)
        assert providers, f"{where} imports {module}, which no installed distribution provides"
        if not providers & declared:
            undeclared.append(f"{module} ({where}; from {', '.join(sorted(providers))})")
    return undeclared


@pytest.mark.parametrize("package", sorted(FIRST_PARTY))
def test_every_import_is_declared(package: str) -> None:
    declared = requirement_names(PROJECT["dependencies"])
    for extra in EXTRAS_ALLOWED.get(package, ()):
        declared |= requirement_names(PROJECT["optional-dependencies"][extra])
    undeclared = undeclared_imports(REPO / package, declared)
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    """The rule itself: an import of a distribution missing from the list is reported, in
    both import forms, and stdlib and first-party imports are not."""
    package = tmp_path / "api"
    package.mkdir()
    (package / "a.py").write_text("import os\nimport core.settings\nimport yaml\nimport httpx\n")
    (package / "b.py").write_text("from fastapi import FastAPI\nfrom selenium import webdriver\n")
    declared = requirement_names([*PROJECT["dependencies"], "trainlab[server]"])
    found = undeclared_imports(package, declared)
    assert [item.split()[0] for item in found] == ["yaml", "selenium"]
